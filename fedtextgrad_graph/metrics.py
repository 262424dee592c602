"""Answer metrics: last-number match, exact string match, and an LLM judge."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from .prompts import JUDGE_SYSTEM_PROMPT, JUDGE_TEMPLATE

if TYPE_CHECKING:
    from .data import Example

__all__ = [
    "Generate",
    "LLMJudge",
    "Scorer",
    "create_scorer",
    "exact_match",
    "final_answer",
    "last_number_match",
    "score_prompt",
]

Scorer = Callable[[str, str, str], Awaitable[bool]]
"""``await scorer(question, prediction, target)`` is True when the prediction is right."""

Generate = Callable[[str, str], Awaitable[str]]
"""``await generate(system_prompt, user_prompt)`` returns the model's reply text."""

# Thousands separators only in groups of three, so "1,2,3" is three numbers, not 123.
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")
_ANSWER = re.compile(r"answer\s*:", re.IGNORECASE)
_ACCURACY = re.compile(r"<ACCURACY>\s*([01])\s*</ACCURACY>")


def _last_number(text: str) -> Decimal | None:
    for match in reversed(_NUMBER.findall(text)):
        try:
            return Decimal(match.replace(",", ""))
        except InvalidOperation:
            continue
    return None


def last_number_match(prediction: str, target: str) -> bool:
    """True when the last number in the prediction equals the target's number."""
    expected = _last_number(target)
    return expected is not None and _last_number(prediction) == expected


def final_answer(text: str) -> str:
    """The text after the last ``Answer:``, or else the last non-empty line."""
    parts = _ANSWER.split(text)
    if len(parts) > 1:
        return parts[-1].strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _normalize(text: str) -> str:
    text = " ".join(text.split()).casefold()
    # Strip quotes and a trailing period until stable, so '"yes".' and "'yes.'" both give yes.
    previous = None
    while text != previous:
        previous = text
        text = text.strip().strip("\"'`").rstrip(".").strip()
    return text


def exact_match(prediction: str, target: str) -> bool:
    """True when the prediction's final answer equals the target, ignoring case and spacing."""
    return _normalize(final_answer(prediction)) == _normalize(target)


class LLMJudge:
    """Asks a judge model whether a free-form response reaches the reference answer."""

    def __init__(self, generate: Generate) -> None:
        self._generate = generate

    async def __call__(self, question: str, prediction: str, target: str) -> bool:
        reply = await self._generate(
            JUDGE_SYSTEM_PROMPT, JUDGE_TEMPLATE.format(question=question, prediction=prediction, target=target)
        )
        verdicts = _ACCURACY.findall(reply)  # the last tag: a judge may first restate the instructions
        return bool(verdicts) and verdicts[-1] == "1"


def _string_scorer(fn: Callable[[str, str], bool]) -> Scorer:
    async def score(question: str, prediction: str, target: str) -> bool:
        return fn(prediction, target)

    return score


def create_scorer(metric: str, judge: Generate | None = None) -> Scorer:
    """The scorer for a metric name: ``last_number``, ``exact`` or ``judge``."""
    if metric == "last_number":
        return _string_scorer(last_number_match)
    if metric == "exact":
        return _string_scorer(exact_match)
    if metric == "judge":
        if judge is None:
            raise ValueError("the judge metric needs a judge model")
        return LLMJudge(judge)
    raise ValueError(f"unknown metric {metric!r}")


async def score_prompt(prompt: str, examples: Sequence[Example], *, answer: Generate, score: Scorer) -> tuple[int, int]:
    """``(correct, total)`` of ``prompt`` as the task model's system prompt, all examples at once."""

    async def one(example: Example) -> bool:
        return await score(example.input, await answer(prompt, example.input), example.target)

    results = await asyncio.gather(*(one(ex) for ex in examples))
    return sum(results), len(results)
