"""Answer metrics: last-number match, exact match, the LLM judge and create_scorer."""

from __future__ import annotations

import pytest

from fedtextgrad_graph.metrics import LLMJudge, create_scorer, exact_match, last_number_match
from fedtextgrad_graph.prompts import JUDGE_SYSTEM_PROMPT


@pytest.mark.parametrize(
    ("prediction", "target"),
    [
        ("Answer: 12.", "12"),
        ("First 3 apples, then 4 more.\nAnswer: 7", "7"),
        ("The balance is -15", "-15"),
        ("That costs $1,250 in total.", "1250"),
        ("Answer: 1,250", "1,250"),
        ("Answer: 3.50", "3.5"),
        ("Answer: 2.0", "2"),
        ("12 - 5 = 7", "7"),
    ],
)
def test_last_number_match_accepts(prediction: str, target: str) -> None:
    assert last_number_match(prediction, target)


@pytest.mark.parametrize(
    ("prediction", "target"),
    [
        ("Answer: 12.", "13"),
        ("Answer: 15", "-15"),  # the sign matters
        ("Answer: 3.5", "35"),  # the decimal point is not a thousands separator
        ("It is 7, not 8", "7"),  # only the last number counts
        ("I do not know", "7"),
        ("Answer: 7", "seven"),  # a target without a number never matches
        ("", "0"),
    ],
)
def test_last_number_match_rejects(prediction: str, target: str) -> None:
    assert not last_number_match(prediction, target)


@pytest.mark.parametrize(
    ("prediction", "target"),
    [
        ("Answer: True", "true"),
        ("Answer:   (A)  ", "(A)"),
        ("Answer: no.", "No"),
        ('Answer: "valid"', "valid"),
        ('Answer: "valid".', "valid"),
        ("Answer: 'apple banana'", "apple  banana"),
        ("Let me think.\nanswer: maybe\nAnswer: yes", "yes"),  # the last Answer: wins
        ("reasoning...\nyes", "yes"),  # no Answer: -> the last non-empty line
    ],
)
def test_exact_match_accepts(prediction: str, target: str) -> None:
    assert exact_match(prediction, target)


@pytest.mark.parametrize(
    ("prediction", "target"),
    [
        ("Answer: yes\nAnswer: no", "yes"),  # an earlier Answer: does not count
        ("Answer: apple banana", "banana apple"),
        ("Answer: (A)", "(B)"),
        ("The answer: yes, probably", "yes"),
    ],
)
def test_exact_match_rejects(prediction: str, target: str) -> None:
    assert not exact_match(prediction, target)


class FakeGenerate:
    """An async ``generate(system, user)`` with a canned reply that records its requests."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, system: str, user: str) -> str:
        self.requests.append((system, user))
        return self.reply


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("The response is right. <ACCURACY>1</ACCURACY>", True),
        ("<ACCURACY> 1 </ACCURACY>", True),
        ("Wrong final answer.\n<ACCURACY>0</ACCURACY>", False),
        ("I think it is correct.", False),
        ("<ACCURACY>yes</ACCURACY>", False),
    ],
)
async def test_llm_judge_parses_reply(reply: str, expected: bool) -> None:
    generate = FakeGenerate(reply)
    assert await LLMJudge(generate)("How many legs?", "Answer: 8", "eight") is expected
    [(system, user)] = generate.requests
    assert system == JUDGE_SYSTEM_PROMPT
    assert "How many legs?" in user and "Answer: 8" in user and "eight" in user


async def test_create_scorer_string_metrics() -> None:
    last_number = create_scorer("last_number")
    exact = create_scorer("exact")
    assert await last_number("q", "Answer: 1,000", "1000")
    assert not await last_number("q", "Answer: 999", "1000")
    assert await exact("q", "Answer: Yes.", "yes")
    assert not await exact("q", "Answer: 1,000", "1000")


async def test_create_scorer_judge_uses_generate() -> None:
    generate = FakeGenerate("<ACCURACY>1</ACCURACY>")
    scorer = create_scorer("judge", generate)
    assert await scorer("q", "p", "t")
    assert len(generate.requests) == 1


def test_create_scorer_errors() -> None:
    with pytest.raises(ValueError, match="judge model"):
        create_scorer("judge")
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        create_scorer("bleu")
