"""Server-side aggregation of client prompts: ``concat``, ``summarize`` and ``uid``.

Every strategy merges the prompt bodies only; the task's output-format instruction is
removed from each client prompt first and appended, intact, as the last sentence.
"""

from __future__ import annotations

import functools
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from .metrics import Generate
from .prompts import AGGREGATOR_SYSTEM_PROMPT, PROMPT_ITEM, SUMMARIZE_TEMPLATE, UID_TEMPLATE

__all__ = [
    "Aggregator",
    "ConcatAggregator",
    "SummarizeAggregator",
    "UIDAggregator",
    "compose_prompt",
    "check_tokenizer",
    "count_tokens",
    "create_aggregator",
    "strip_format",
]

logger = logging.getLogger(__name__)
_WORDPIECE = re.compile(r"\w+|[^\w\s]")


def strip_format(prompt: str, format_instruction: str) -> str:
    """The prompt without any copy of the format instruction (however its spaces were reflowed)."""
    words = format_instruction.split()
    body = re.sub(r"\s+".join(map(re.escape, words)), " ", prompt) if words else prompt
    return "\n".join(" ".join(line.split()) for line in body.strip().splitlines()).strip()


def compose_prompt(body: str, format_instruction: str) -> str:
    """``body`` followed by the format instruction (if any) as the last sentence."""
    body = strip_format(body, format_instruction)
    return " ".join(part for part in (body, format_instruction.strip()) if part)


@functools.cache
def _tiktoken_encoding(name: str) -> Any:
    import tiktoken

    return tiktoken.get_encoding(name)


def check_tokenizer(name: str) -> None:
    """Load a tiktoken vocabulary now (it downloads once), so a missing one fails early."""
    if name != "wordpiece":
        try:
            _tiktoken_encoding(name)
        except Exception as exc:
            raise ValueError(f"tokenizer {name!r} is not available ({exc}); use tokenizer = \"wordpiece\" offline") from None


def count_tokens(text: str, tokenizer: str = "wordpiece") -> int:
    """Tokens in ``text``: tiktoken's ``o200k_base``/``cl100k_base``, or ``wordpiece`` (words and
    punctuation marks: offline, deterministic, close to BPE counts for English prose)."""
    if tokenizer == "wordpiece":
        return len(_WORDPIECE.findall(text))
    return len(_tiktoken_encoding(tokenizer).encode(text))


class Aggregator(ABC):
    """Merges client prompts into one global prompt."""

    name: str

    async def aggregate(self, prompts: Mapping[str, str], *, format_instruction: str) -> str:
        """Merge ``{client_id: prompt}`` (in the order given); the result ends with ``format_instruction``."""
        if not prompts:
            raise ValueError("nothing to aggregate: no client prompts")
        bodies: dict[str, str] = {}
        for client_id in prompts:
            body = strip_format(prompts[client_id], format_instruction)
            if body and body not in bodies.values():
                bodies[client_id] = body
        if len(bodies) <= 1:
            return compose_prompt(next(iter(bodies.values()), ""), format_instruction)
        # Judge the merge by its body: a reply that is empty or only the format instruction
        # would otherwise discard every client's prompt.
        merged = strip_format(await self._merge(bodies), format_instruction)
        if not merged:
            logger.warning("%s aggregation returned an empty prompt; concatenating instead", self.name)
            merged = "\n\n".join(bodies.values())
        return compose_prompt(merged, format_instruction)

    @abstractmethod
    async def _merge(self, bodies: Mapping[str, str]) -> str:
        """Merge two or more distinct prompt bodies."""


class ConcatAggregator(Aggregator):
    """Concatenates the distinct client prompts, in the order given (the round's selection order)."""

    name = "concat"

    async def _merge(self, bodies: Mapping[str, str]) -> str:
        return "\n\n".join(bodies.values())


class SummarizeAggregator(Aggregator):
    """Asks the aggregator LLM to merge the client prompts into one."""

    name = "summarize"
    template = SUMMARIZE_TEMPLATE

    def __init__(self, generate: Generate, system_prompt: str = AGGREGATOR_SYSTEM_PROMPT) -> None:
        self._generate = generate
        self._system_prompt = system_prompt

    async def _merge(self, bodies: Mapping[str, str]) -> str:
        items = "\n".join(PROMPT_ITEM.format(client_id=cid, prompt=body) for cid, body in bodies.items())
        return (await self._generate(self._system_prompt, self.template.format(prompts=items))).strip()


class UIDAggregator(SummarizeAggregator):
    """LLM merge guided by the Uniform Information Density principle (FedTextGrad's ``sum_uid``)."""

    name = "uid"
    template = UID_TEMPLATE


def create_aggregator(strategy: str, generate: Generate | None = None) -> Aggregator:
    """The aggregator for ``concat``, ``summarize`` or ``uid`` (the last two need ``generate``)."""
    if strategy == "concat":
        return ConcatAggregator()
    classes = {"summarize": SummarizeAggregator, "uid": UIDAggregator}
    if strategy not in classes:
        raise ValueError(f"unknown aggregation strategy {strategy!r}; choose concat, summarize or uid")
    if generate is None:
        raise ValueError(f"the {strategy} strategy needs an aggregator model")
    return classes[strategy](generate)
