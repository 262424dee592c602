"""The offline ``simulated`` model: deterministic scripted replies for every role.

It is not a language model. It exists so the whole pipeline runs offline: it answers simple
arithmetic, boolean, word-sorting and counting questions, more often correctly when the
system prompt holds more of its known strategy tips; it "optimizes" a prompt by adding a
tip; it merges prompts by removing repeated sentences; it says a prompt states an instruction when
it contains it word for word; it judges by string comparison.
Every reply is a pure function of the request, so runs are reproducible. Like a provider, it
reports each reply's token usage (``usage_metadata``): the ``wordpiece`` tokens (words and
punctuation marks) of the messages it was sent and of its reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult

from ..metrics import exact_match, final_answer, last_number_match
from ..prompts import AGGREGATOR_SYSTEM_PROMPT, JUDGE_SYSTEM_PROMPT
from ..text import count_tokens

__all__ = ["SIMULATED_MODEL", "SimulatedChatModel", "simulated_reply"]

SIMULATED_MODEL = "simulated"

TIPS = (
    "Restate what the question asks for before solving it.",
    "List every relevant item or quantity explicitly before combining them.",
    "Work through the problem one small step at a time.",
    "Double-check each intermediate result before moving on.",
    "Watch for items or terms that do not belong to the asked category.",
    "Keep track of signs and the order of operations.",
    "Verify the final answer against the question before writing it.",
)
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"))
}
_NUMBER_WORDS.update({"a": 1, "an": 1})
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def _between(text: str, start: str, end: str) -> str | None:
    i = text.find(start)
    j = text.find(end, i + len(start)) if i >= 0 else -1
    return text[i + len(start) : j].strip() if j >= 0 else None


def _solve(question: str) -> str | None:
    """A correct answer for the simple task shapes this model knows, else None."""
    q = question.strip()
    if q.lower().startswith("sort the following words"):
        words = q.split(":", 2)[-1].split()
        return " ".join(sorted(words))
    expr = q.removesuffix("=").removesuffix(" is").strip()
    if expr and "**" not in expr and re.fullmatch(r"[\d\s()+\-*]+", expr):
        try:
            return str(eval(expr, {"__builtins__": {}}))  # digits, spaces, + - * ( ) only
        except (SyntaxError, ZeroDivisionError):
            return None
    if expr and re.fullmatch(r"(True|False|not|and|or|[()\s])+", expr):
        try:
            return str(eval(expr, {"__builtins__": {}}))  # boolean literals and operators only
        except SyntaxError:
            return None
    items = _between(q, "I have ", ". How many")
    if items:
        total = 0
        for item in re.split(r",\s*(?:and\s+)?|\s+and\s+", items):
            first = item.split(" ", 1)[0].lower()
            total += _NUMBER_WORDS.get(first, 1)
        return str(total)
    return None


def _answer(system: str, question: str) -> str:
    skill = sum(tip in system for tip in TIPS)
    roll = _digest(system, question) % 100
    solved = _solve(question)
    if solved is not None and roll < min(95, 40 + 12 * skill):
        answer = solved
    elif solved is not None and solved.lstrip("-").isdigit():
        answer = str(int(solved) + 1 + roll % 3)
    else:
        answer = str(roll % 10)
    return f"Let me work through this step by step.\n(simulated reasoning)\nAnswer: {answer}"


def _ends_with_format(prompt: str, fmt: str | None) -> bool:
    return fmt is not None and fmt != "" and prompt.rstrip().endswith(fmt)


def _improve(user: str) -> str:
    prompt = _between(user, "<LM_SYSTEM_PROMPT>", "</LM_SYSTEM_PROMPT>") or _between(user, "<VARIABLE>", "</VARIABLE>") or ""
    # TextGrad lists feedback in set order; hash the batch's inputs sorted, so replies are reproducible.
    roll = _digest(prompt, *sorted(re.findall(r"<LM_INPUT>(.*?)</LM_INPUT>", user, flags=re.DOTALL)))
    if roll % 9 == 0:
        return "I am not sure how to improve this prompt."  # no tags: a malformed reply
    missing = [tip for tip in TIPS if tip not in prompt]
    if not missing:
        return f"<IMPROVED_VARIABLE>{prompt}</IMPROVED_VARIABLE>"
    tip = missing[roll % len(missing)]
    fmt = _between(user, "last sentence of the prompt:", "</CONSTRAINTS>")
    if fmt and _ends_with_format(prompt, fmt):
        body = prompt.rstrip()[: -len(fmt)].rstrip()
        new = f"{body} {tip} {fmt}".strip()
    else:
        new = f"{prompt} {tip}".strip()
    return f"<IMPROVED_VARIABLE>{new}</IMPROVED_VARIABLE>"


def _feedback(user: str) -> str:
    tip = TIPS[_digest(user) % len(TIPS)]
    return f"(simulated feedback) The prompt could guide the model better. Consider adding: {tip}"


def _merge(user: str) -> str:
    seen: list[str] = []
    for body in re.findall(r"<PROMPT[^>]*>(.*?)</PROMPT>", user, flags=re.DOTALL):
        for sentence in _SENTENCE.split(body.strip()):
            if sentence and sentence not in seen:
                seen.append(sentence)
    return " ".join(seen)


def _entailment(user: str) -> str:
    """``N: yes`` for each numbered instruction the prompt contains word for word, else ``N: no``."""
    prompt = _between(user, "<PROMPT>", "</PROMPT>") or ""
    listed = re.findall(r"(?m)^(\d+)\. (.+)$", user.split("</PROMPT>", 1)[-1])
    return "\n".join(f"{n}: {'yes' if text.strip() in prompt else 'no'}" for n, text in listed)


def _judge(user: str) -> str:
    prediction = _between(user, "<RESPONSE>", "</RESPONSE>") or ""
    target = _between(user, "<REFERENCE_ANSWER>", "</REFERENCE_ANSWER>") or ""
    right = exact_match(prediction, target) or last_number_match(final_answer(prediction), target)
    return f"<ACCURACY>{int(right)}</ACCURACY>"


def simulated_reply(system: str, user: str) -> str:
    """The scripted reply to one request, chosen by what the request asks for."""
    if "IMPROVED_VARIABLE" in system:
        return _improve(user)
    if "gradient (feedback) engine" in system or "aggregate and summarize the feedback" in system:
        return _feedback(user)
    if system == AGGREGATOR_SYSTEM_PROMPT and "does the prompt state it" in user:
        return _entailment(user)
    if system == AGGREGATOR_SYSTEM_PROMPT:
        return _merge(user)
    if system == JUDGE_SYSTEM_PROMPT:
        return _judge(user)
    return _answer(system, user)


def _split(messages: list[BaseMessage]) -> tuple[str, str]:
    system = "\n".join(m.text for m in messages if m.type == "system")
    user = "\n".join(m.text for m in messages if m.type != "system")
    return system, user


class SimulatedChatModel(BaseChatModel):
    """Offline chat model with scripted, deterministic replies (see module docstring).

    Args:
        latency_s: Seconds each call takes, to simulate a remote model.
    """

    latency_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return SIMULATED_MODEL

    @property
    def model_name(self) -> str:
        return SIMULATED_MODEL

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        reply = simulated_reply(*_split(messages))
        sent, said = sum(count_tokens(m.text) for m in messages), count_tokens(reply)
        usage = UsageMetadata(input_tokens=sent, output_tokens=said, total_tokens=sent + said)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply, usage_metadata=usage))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self._result(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._result(messages)
