"""Screening client uploads before aggregation: an interface, a registry and the built-in screens.

A screen looks at the round's uploads (``{client_id: prompt}``) and leaves out those it does
not trust, each with a reason. Screens run in the configured order, each on the uploads the
ones before it kept, so a cheap screen (``size``) spares a costly one (``validation``) the
work. Built-ins:

- ``size``: an upload longer than ``max(size_floor_chars, size_ratio * len(global prompt))``.
- ``validation``: an upload that scores more than ``margin`` below the other uploads' median
  and/or the global prompt on the same validation sample (``rule``).
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import ScreeningConfig
from ..replies import ReplyCounts

__all__ = [
    "Compare",
    "Comparison",
    "PairedScore",
    "ScreenContext",
    "ScreenResult",
    "SizeScreen",
    "UploadScreen",
    "ValidationScreen",
    "create_screens",
    "register_screen",
    "screen_names",
    "screen_uploads",
    "validation_left_out",
]


@dataclass(frozen=True)
class PairedScore:
    """A client prompt and the global prompt scored on the same ``total`` validation examples."""

    correct: int
    global_correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total

    @property
    def global_accuracy(self) -> float:
        return self.global_correct / self.total

    def record(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "correct": self.correct,
            "total": self.total,
            "global_accuracy": self.global_accuracy,
            "global_correct": self.global_correct,
        }


@dataclass(frozen=True)
class Comparison:
    """Client prompts scored against the global prompt: a :class:`PairedScore` per client
    (none for a client nobody could score), the LLM calls it took, and the server's among them
    (calls and empty replies by role; none when the clients scored)."""

    scores: dict[str, PairedScore]
    llm_calls: int = 0
    replies: ReplyCounts = field(default_factory=dict)


Compare = Callable[[Mapping[str, str]], Awaitable[Comparison]]
"""``await compare({client_id: prompt})`` scores each prompt and the global prompt on one sample."""


@dataclass(frozen=True)
class ScreenContext:
    """What a screen may use besides the uploads: the round, the current global prompt, and
    ``compare`` (scores uploads against the global prompt on a validation sample)."""

    round: int
    global_prompt: str
    compare: Compare


@dataclass
class ScreenResult:
    """The uploads a screen left out (``{client_id: reason}``), the scores it measured
    (``{client_id: {...}}``) and the LLM calls it took."""

    left_out: dict[str, str] = field(default_factory=dict)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    llm_calls: int = 0


class UploadScreen(ABC):
    """Leaves out client uploads that should not reach aggregation.

    Subclasses set ``name`` (listed in ``[screening] screens``) and implement :meth:`screen`;
    register them with :func:`register_screen`. They are built by :meth:`from_config`.
    """

    name: ClassVar[str]

    @classmethod
    def from_config(cls, config: ScreeningConfig) -> UploadScreen:
        """The screen with the ``[screening]`` settings it uses."""
        return cls()

    @abstractmethod
    async def screen(self, prompts: Mapping[str, str], context: ScreenContext) -> ScreenResult:
        """Judge ``{client_id: prompt}``; reasons name what was wrong, for the round's record."""


_REGISTRY: dict[str, type[UploadScreen]] = {}


def register_screen(cls: type[UploadScreen]) -> type[UploadScreen]:
    """Make a screen available as a ``[screening] screens`` entry (usable as a decorator)."""
    _REGISTRY[cls.name] = cls
    return cls


def screen_names() -> list[str]:
    """The registered screen names."""
    return sorted(_REGISTRY)


def create_screens(config: ScreeningConfig) -> list[UploadScreen]:
    """The configured screens, in order; ``ValueError`` names an unknown one."""
    screens = []
    for name in config.screens:
        cls = _REGISTRY.get(name)
        if cls is None:
            raise ValueError(f"unknown screen {name!r}; choose from {', '.join(screen_names())}")
        screens.append(cls.from_config(config))
    return screens


async def screen_uploads(screens: list[UploadScreen], prompts: Mapping[str, str], context: ScreenContext) -> ScreenResult:
    """Run ``screens`` in order, each on the uploads the ones before it kept."""
    result = ScreenResult()
    for screen in screens:
        kept = {cid: prompt for cid, prompt in prompts.items() if cid not in result.left_out}
        if not kept:
            break
        found = await screen.screen(kept, context)
        result.left_out.update({cid: f"{screen.name}: {reason}" for cid, reason in found.left_out.items()})
        result.scores.update(found.scores)
        result.llm_calls += found.llm_calls
    return result


@register_screen
class SizeScreen(UploadScreen):
    """Leaves out an upload longer than ``ratio`` times the global prompt, or ``floor``
    characters if that is more (so a short initial prompt can still grow)."""

    name = "size"

    def __init__(self, ratio: float = 3.0, floor: int = 4000) -> None:
        self.ratio = ratio
        self.floor = floor

    @classmethod
    def from_config(cls, config: ScreeningConfig) -> SizeScreen:
        return cls(config.size_ratio, config.size_floor_chars)

    def cap(self, global_prompt: str) -> int:
        """The longest upload kept, in characters."""
        return max(self.floor, int(self.ratio * len(global_prompt)))

    async def screen(self, prompts: Mapping[str, str], context: ScreenContext) -> ScreenResult:
        cap = self.cap(context.global_prompt)
        return ScreenResult(
            left_out={
                cid: (
                    f"{len(prompt)} chars, over the cap of {cap} ({self.ratio:g} x the global prompt's "
                    f"{len(context.global_prompt)} chars, at least {self.floor})"
                )
                for cid, prompt in prompts.items()
                if len(prompt) > cap
            }
        )


_MIN_REST = 2  # other scored uploads needed for a median to compare with
_TOLERANCE = 1e-9  # exactly ``margin`` below is not "more than margin below", despite float rounding


def validation_left_out(scores: Mapping[str, PairedScore], *, rule: str, margin: float) -> dict[str, str]:
    """The uploads the validation ``rule`` leaves out, with the reason.

    An upload is *far below the rest* when its accuracy is more than ``margin`` below the
    median of the other scored uploads (there is a rest only with two others or more: one peer
    alone may be the outlier), and *below the global prompt* when it is more than ``margin``
    below the global prompt on the same sample.
    ``rule``: ``rest``, ``global``, ``either`` (one of the two) or ``both``.
    """
    accuracies = {cid: s.accuracy for cid, s in scores.items()}
    left_out = {}
    for cid, score in scores.items():
        others = [acc for other, acc in accuracies.items() if other != cid]
        rest = statistics.median(others) if len(others) >= _MIN_REST else None
        checks = {
            "rest": rest is not None and score.accuracy < rest - margin - _TOLERANCE,
            "global": score.accuracy < score.global_accuracy - margin - _TOLERANCE,
        }
        if rule == "either":
            failed = any(checks.values())
        elif rule == "both":
            failed = all(checks.values())
        else:
            failed = checks[rule]
        if not failed:
            continue
        why = []
        if checks["rest"]:
            why.append(f"the other uploads' median {rest:.2f}")
        if checks["global"]:
            why.append(f"the global prompt's {score.global_accuracy:.2f}")
        left_out[cid] = (
            f"validation accuracy {score.accuracy:.2f} ({score.correct}/{score.total}), more than "
            f"{margin:g} below {' and '.join(why)} on the same sample"
        )
    return left_out


@register_screen
class ValidationScreen(UploadScreen):
    """Scores each upload against the global prompt on a validation sample and leaves out
    those the ``rule`` finds too far below (see :func:`validation_left_out`)."""

    name = "validation"

    def __init__(self, rule: str = "either", margin: float = 0.25) -> None:
        self.rule = rule
        self.margin = margin

    @classmethod
    def from_config(cls, config: ScreeningConfig) -> ValidationScreen:
        return cls(config.rule, config.margin)

    async def screen(self, prompts: Mapping[str, str], context: ScreenContext) -> ScreenResult:
        comparison = await context.compare(prompts)
        return ScreenResult(
            left_out=validation_left_out(comparison.scores, rule=self.rule, margin=self.margin),
            scores={cid: score.record() for cid, score in comparison.scores.items()},
            llm_calls=comparison.llm_calls,
        )
