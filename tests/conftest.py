"""Shared fixtures: small data files and configs written by the tests, and fake chat models."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from fedtextgrad_graph import SimulatedChatModel

ITEMS = ["apple", "banana", "plum", "peach", "grape", "melon"]
NUMBER_WORDS = ["zero", "a", "two", "three"]


def counting_examples(n: int, seed: int = 7) -> list[dict[str, str]]:
    """BBH-style object-counting examples with correct targets."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        items = rng.sample(ITEMS, 3)
        counts = [rng.randint(1, 3) for _ in items]
        listed = [f"{NUMBER_WORDS[c]} {item}{'s' if c > 1 else ''}" for item, c in zip(items, counts, strict=True)]
        question = f"I have {listed[0]}, {listed[1]}, and {listed[2]}. How many fruits do I have?"
        examples.append({"input": question, "target": str(sum(counts))})
    return examples


def write_bbh(path: Path, n: int = 50, seed: int = 7) -> Path:
    path.write_text(json.dumps({"examples": counting_examples(n, seed)}), encoding="utf-8")
    return path


CONFIG_TEMPLATE = """
[run]
name = "test"
seed = 0
max_concurrency = {max_concurrency}

[tasks.counting]
format = "bbh"
path = "counting.json"
split = {{ train = [0, 30], validation = [30, 40], test = [40, 50] }}

[federation]
num_clients = {clients}
sampling_rate = 1.0

[client]
local_steps = {local_steps}
batch_size = 3

[aggregation]
strategy = "{strategy}"

[convergence]
max_rounds = {rounds}
unchanged_rounds = 1000

{models}
"""


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write ``counting.json`` and a config TOML into ``tmp_path``; returns the config path."""

    def make(
        *,
        clients: int = 3,
        rounds: int = 2,
        local_steps: int = 1,
        strategy: str = "uid",
        max_concurrency: int = 8,
        models: str = "",
        extra: str = "",
        name: str = "config.toml",
    ) -> Path:
        write_bbh(tmp_path / "counting.json")
        path = tmp_path / name
        path.write_text(
            CONFIG_TEMPLATE.format(
                clients=clients,
                rounds=rounds,
                local_steps=local_steps,
                strategy=strategy,
                max_concurrency=max_concurrency,
                models=models,
            )
            + extra,
            encoding="utf-8",
        )
        return path

    return make


class ScriptedChatModel(BaseChatModel):
    """A fake chat model whose reply is ``respond(system, user)``; records every request."""

    respond: Any
    _requests: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._requests

    def _reply(self, messages: list[BaseMessage]) -> ChatResult:
        system = "\n".join(m.text for m in messages if m.type == "system")
        user = "\n".join(m.text for m in messages if m.type != "system")
        self._requests.append((system, user))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.respond(system, user)))])

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        return self._reply(messages)


class LatencyModel(SimulatedChatModel):
    """The simulated model with a fixed latency, recording how many calls were in flight at
    once and in how many waves they ran: a call's wave is one more than the deepest wave among
    the calls that had finished when it started. Calls that overlap share a wave, so with the
    independent calls of a round in flight together the waves are its longest chain of
    dependent calls; run one at a time, every call is a wave of its own."""

    _in_flight: int = PrivateAttr(default=0)
    _max_in_flight: int = PrivateAttr(default=0)
    _calls: int = PrivateAttr(default=0)
    _finished_wave: int = PrivateAttr(default=0)

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def waves(self) -> int:
        return self._finished_wave

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        self._in_flight += 1
        self._calls += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        wave = self._finished_wave + 1
        try:
            return await super()._agenerate(messages, stop, run_manager, **kw)
        finally:
            self._in_flight -= 1
            self._finished_wave = max(self._finished_wave, wave)


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
