"""Aggregation strategies: the format instruction stays intact and last; LLM merges see every prompt."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from fedtextgrad_graph import text
from fedtextgrad_graph.aggregation import create_aggregator
from fedtextgrad_graph.models import LLMGateway
from fedtextgrad_graph.prompts import AGGREGATOR_SYSTEM_PROMPT
from fedtextgrad_graph.text import count_tokens

FORMAT = "The last line of your response should be of the following format: 'Answer: $VALUE'."
STRATEGIES = ["concat", "summarize", "uid"]


class FakeGenerate:
    """An async ``generate(system, user)`` that records its requests and returns a fixed merge."""

    def __init__(self, reply: str = "Merged: count carefully and check twice.") -> None:
        self.reply = reply
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, system: str, user: str) -> str:
        self.requests.append((system, user))
        return self.reply


def make(strategy: str, generate: FakeGenerate | None = None):
    return create_aggregator(strategy, None if strategy == "concat" else (generate or FakeGenerate()))


def assert_format_once_and_last(prompt: str) -> None:
    assert prompt.count(FORMAT) == 1, prompt
    assert prompt.endswith(FORMAT), prompt


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_format_instruction_once_and_last(strategy: str) -> None:
    prompts = {
        "a": f"Count every object. {FORMAT}",  # at the end
        "b": f"Think step by step. {FORMAT} Then double-check.",  # in the middle
        "c": "Ignore items that are not in the asked category.",  # missing
        "d": f"{FORMAT}\n{FORMAT}\nWrite small steps.",  # twice, first
    }
    result = await make(strategy).aggregate(prompts, format_instruction=FORMAT)
    assert_format_once_and_last(result)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_llm_reply_containing_format_instruction(strategy: str) -> None:
    generate = FakeGenerate(f"Count carefully. {FORMAT} Check twice. {FORMAT}")
    result = await make(strategy, generate).aggregate(
        {"a": f"Count. {FORMAT}", "b": f"Check. {FORMAT}"}, format_instruction=FORMAT
    )
    assert_format_once_and_last(result)
    if strategy != "concat":
        assert result == f"Count carefully. Check twice. {FORMAT}"


async def test_concat_joins_distinct_prompts_in_the_given_order_and_dedupes() -> None:
    prompts = {
        "c1": f"Count carefully. {FORMAT}",
        "c2": f"Check twice. {FORMAT}",
        "c3": f"Count carefully.   {FORMAT}",  # same body, different spacing
        "c4": FORMAT,  # empty body
    }
    result = await make("concat").aggregate(prompts, format_instruction=FORMAT)
    assert result == f"Count carefully.\n\nCheck twice. {FORMAT}"


async def test_a_reflowed_format_instruction_is_removed_too() -> None:
    reflowed = FORMAT.replace(" of your", "\nof  your")
    result = await make("concat").aggregate({"c1": f"Count carefully. {reflowed}", "c2": "List items."}, format_instruction=FORMAT)
    assert result.count("last line") == 1 and result.endswith(FORMAT)


@pytest.mark.parametrize("strategy", ["summarize", "uid"])
async def test_llm_strategies_send_every_client_prompt(strategy: str) -> None:
    generate = FakeGenerate()
    prompts = {"alpha": f"Count carefully. {FORMAT}", "beta": f"List the items first. {FORMAT}"}
    result = await make(strategy, generate).aggregate(prompts, format_instruction=FORMAT)

    assert result == f"Merged: count carefully and check twice. {FORMAT}"
    [(system, user)] = generate.requests
    assert system == AGGREGATOR_SYSTEM_PROMPT
    assert "Count carefully." in user and "List the items first." in user
    assert 'client="alpha"' in user and 'client="beta"' in user
    assert FORMAT not in user  # the LLM merges bodies only
    assert ("Uniform Information Density" in user) is (strategy == "uid")


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_single_distinct_prompt_needs_no_llm_call(strategy: str) -> None:
    generate = FakeGenerate()
    prompts = {"a": f"Count carefully. {FORMAT}", "b": f"Count  carefully.\n{FORMAT}", "c": "Count carefully."}
    result = await make(strategy, generate).aggregate(prompts, format_instruction=FORMAT)
    assert result == f"Count carefully. {FORMAT}"
    assert generate.requests == []


@pytest.mark.parametrize("strategy", ["summarize", "uid"])
@pytest.mark.parametrize("reply", ["", "   \n", FORMAT])
async def test_empty_llm_reply_falls_back_to_concatenation(strategy: str, reply: str) -> None:
    generate = FakeGenerate(reply)
    result = await make(strategy, generate).aggregate(
        {"a": f"Count carefully. {FORMAT}", "b": f"Check twice. {FORMAT}"}, format_instruction=FORMAT
    )
    assert len(generate.requests) == 1
    assert result == f"Count carefully.\n\nCheck twice. {FORMAT}"


async def test_aggregate_requires_prompts() -> None:
    with pytest.raises(ValueError, match="no client prompts"):
        await make("concat").aggregate({}, format_instruction=FORMAT)


def test_create_aggregator_errors() -> None:
    with pytest.raises(ValueError, match="needs an aggregator model"):
        create_aggregator("uid")
    with pytest.raises(ValueError, match="unknown aggregation strategy 'mean'"):
        create_aggregator("mean", FakeGenerate())


async def test_uid_with_langchain_fake_chat_model() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content=f"Count each item once. {FORMAT}")]))
    gateway = LLMGateway(max_concurrency=2)

    async def generate(system: str, user: str) -> str:
        return await gateway.generate(model, system, user, role="aggregator")

    result = await create_aggregator("uid", generate).aggregate(
        {"a": f"Count carefully. {FORMAT}", "b": f"Check twice. {FORMAT}"}, format_instruction=FORMAT
    )
    assert result == f"Count each item once. {FORMAT}"
    assert gateway.count(role="aggregator") == 1


def test_count_tokens_wordpiece_is_offline_and_deterministic() -> None:
    assert count_tokens("Count the items, then answer.") == 7
    assert count_tokens("") == 0


def test_count_tokens_with_a_tiktoken_vocabulary(monkeypatch: pytest.MonkeyPatch) -> None:
    class Encoding:
        def encode(self, text: str) -> list[int]:
            return list(range(len(text.split())))

    monkeypatch.setattr(text, "_tiktoken_encoding", lambda name: Encoding())
    assert count_tokens(f"Count carefully. {FORMAT}", "o200k_base") == len(f"Count carefully. {FORMAT}".split())


def test_unavailable_tokenizer_fails_early(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str):
        raise ConnectionError("no network")

    monkeypatch.setattr(text, "_tiktoken_encoding", offline)
    with pytest.raises(ValueError, match="wordpiece"):
        text.check_tokenizer("cl100k_base")
    text.check_tokenizer("wordpiece")
