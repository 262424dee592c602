"""The aggregation interface and its registry.

Every strategy merges the prompt bodies only; the task's output-format instruction is removed
from each client prompt first and appended, intact, as the last sentence.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping

from ..metrics import Generate
from ..text import compose_prompt, strip_format

__all__ = ["Aggregator", "aggregator_names", "create_aggregator", "register_aggregator"]

logger = logging.getLogger(__name__)


class Aggregator(ABC):
    """Merges client prompts into one global prompt.

    Subclasses set ``name`` (the ``[aggregation] strategy`` value), ``needs_model`` (whether
    they call the aggregator LLM) and implement :meth:`_merge`; register them with
    :func:`register_aggregator`. Their constructor takes the aggregator model's ``generate``
    (``None`` when ``needs_model`` is false).
    """

    name: str
    needs_model: bool = False
    enforces_targets: bool = False
    """Whether a merge that misses the ``[aggregation]`` targets is repaired (see :mod:`.repair`)."""

    async def aggregate(self, prompts: Mapping[str, str], *, format_instruction: str) -> str:
        """Merge ``{client_id: prompt}`` (in the order given); the result ends with ``format_instruction``."""
        if not prompts:
            raise ValueError("nothing to aggregate: no client prompts")
        merged = await self.merge_bodies(self.bodies(prompts, format_instruction=format_instruction), format_instruction=format_instruction)
        return compose_prompt(merged, format_instruction)

    def bodies(self, prompts: Mapping[str, str], *, format_instruction: str) -> dict[str, str]:
        """The distinct, non-empty client prompt bodies (format instruction removed), by client id."""
        bodies: dict[str, str] = {}
        seen: set[str] = set()
        for client_id in prompts:
            body = strip_format(prompts[client_id], format_instruction)
            if body and body not in seen:
                seen.add(body)
                bodies[client_id] = body
        return bodies

    async def merge_bodies(self, bodies: Mapping[str, str], *, format_instruction: str) -> str:
        """The merged body of distinct client bodies (a single one is kept as it is)."""
        if len(bodies) <= 1:
            return next(iter(bodies.values()), "")
        # Judge the merge by its body: a reply that is empty or only the format instruction
        # would otherwise discard every client's prompt.
        merged = strip_format(await self._merge(bodies), format_instruction)
        if not merged:
            logger.warning("%s aggregation returned an empty prompt; concatenating instead", self.name)
            merged = "\n\n".join(bodies.values())
        return merged

    async def revise(self, request: str) -> str:
        """Answer a repair request (only strategies that call a model can)."""
        raise NotImplementedError(f"the {self.name} strategy does not repair merges")

    @abstractmethod
    async def _merge(self, bodies: Mapping[str, str]) -> str:
        """Merge two or more distinct prompt bodies."""


_REGISTRY: dict[str, type[Aggregator]] = {}


def register_aggregator(cls: type[Aggregator]) -> type[Aggregator]:
    """Make a strategy available as ``[aggregation] strategy = cls.name`` (usable as a decorator)."""
    _REGISTRY[cls.name] = cls
    return cls


def aggregator_names() -> list[str]:
    """The registered strategy names."""
    return sorted(_REGISTRY)


def create_aggregator(strategy: str, generate: Generate | None = None) -> Aggregator:
    """The registered aggregator named ``strategy``; LLM strategies need ``generate``."""
    cls = _REGISTRY.get(strategy)
    if cls is None:
        raise ValueError(f"unknown aggregation strategy {strategy!r}; choose one of {', '.join(aggregator_names())}")
    if not cls.needs_model:
        return cls()
    if generate is None:
        raise ValueError(f"the {strategy} strategy needs an aggregator model")
    return cls(generate)  # type: ignore[call-arg]
