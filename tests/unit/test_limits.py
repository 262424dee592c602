"""Per-endpoint limits: in flight, requests per minute, tokens per minute (no timing: counts
and an injected clock)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from fedtextgrad_graph.config import ConfigError, ModelsConfig, load_config
from fedtextgrad_graph.models import LLMGateway, ModelRouter
from fedtextgrad_graph.models.limits import EndpointLimiter, EndpointLimits, estimate_tokens

from ..conftest import ScriptedChatModel


class HeldModel(ScriptedChatModel):
    """A model at ``base_url`` whose calls wait for ``release``, counting the calls in flight
    to its URL in ``gauge[base_url] = [now, most]``."""

    base_url: str
    release: Any
    gauge: Any

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        counts = self.gauge.setdefault(self.base_url, [0, 0])
        counts[0] += 1
        counts[1] = max(counts[1], counts[0])
        try:
            await self.release.wait()
        finally:
            counts[0] -= 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage("ok"))])


async def _settle(loop_turns: int = 50) -> None:
    for _ in range(loop_turns):
        await asyncio.sleep(0)


def test_each_endpoint_runs_at_its_own_in_flight_limit_at_once() -> None:
    paid_url, local_url = "http://paid.example/v1", "http://localhost:8000/v1"
    gauge: dict[str, list[int]] = {}

    async def scenario() -> tuple[int, int]:
        release = asyncio.Event()
        paid = HeldModel(respond=None, base_url=paid_url, release=release, gauge=gauge)
        paid_judge = HeldModel(respond=None, base_url=paid_url, release=release, gauge=gauge)  # same endpoint, own object
        local = HeldModel(respond=None, base_url=local_url, release=release, gauge=gauge)
        models = ModelsConfig.model_validate(
            {
                "task": {"max_in_flight": 2},
                "judge": {"max_in_flight": 2},
                "optimizer": {"max_in_flight": 5},
            }
        )
        router = ModelRouter(models, given={"task": paid, "judge": paid_judge, "optimizer": local})
        router.build_all(["task", "judge", "optimizer"], client_ids=[None])
        gateway = LLMGateway(max_concurrency=100, limiters=router.limiters)
        calls = [
            gateway.generate(router.get(role), None, f"q{i}", role=role)
            for role in ("task", "judge", "optimizer")
            for i in range(10)
        ]
        tasks = [asyncio.ensure_future(c) for c in calls]
        await _settle()
        in_flight_now = gauge[paid_url][0], gauge[local_url][0]
        release.set()
        await asyncio.gather(*tasks)
        return in_flight_now

    assert asyncio.run(scenario()) == (2, 5)  # both endpoints full at once, each at its own limit
    assert (gauge[paid_url][1], gauge[local_url][1]) == (2, 5)  # never more, task and judge together


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def _admitted_at(limits: EndpointLimits, requests: list[tuple[int, int]]) -> list[float]:
    """Admission times of ``(estimated, reported)`` token requests sent at once."""
    clock = FakeClock()
    limiter = EndpointLimiter(limits, clock=clock, sleep=clock.sleep)
    times: list[float] = []

    async def one(estimated: int, reported: int) -> None:
        async with limiter.admit(estimated) as settle:
            times.append(clock())
            settle(reported)

    async def all_at_once() -> None:
        await asyncio.gather(*(one(e, r) for e, r in requests))

    asyncio.run(all_at_once())
    return times


def _most_in_a_minute(times: list[float], amounts: list[int]) -> int:
    return max(sum(a for t, a in zip(times, amounts, strict=True) if start <= t < start + 60) for start in times)


def test_requests_per_minute_admits_no_more_than_the_limit_in_any_minute() -> None:
    times = _admitted_at(EndpointLimits(requests_per_minute=3), [(1, 1)] * 10)
    assert len(times) == 10
    assert _most_in_a_minute(times, [1] * 10) == 3
    assert times[:3] == [0.0, 0.0, 0.0] and times[3] == 60.0


def test_tokens_per_minute_counts_the_reported_usage() -> None:
    # Estimated 40 tokens each, reported 10: after the correction more requests fit.
    cheap = _admitted_at(EndpointLimits(tokens_per_minute=100), [(40, 10)] * 8)
    assert _most_in_a_minute(cheap, [10] * 8) <= 100
    # Each admission's 40 became 10 before the next was weighed: 7 fit at once (70 + 40 > 100),
    # where estimates alone would admit 2.
    assert cheap.count(0.0) == 7
    # Reported 90: a request estimated at 40 waits for the window to free.
    costly = _admitted_at(EndpointLimits(tokens_per_minute=100), [(40, 90)] * 4)
    assert _most_in_a_minute(costly, [90] * 4) <= 100
    assert costly == [0.0, 60.0, 120.0, 180.0]


def test_token_estimate_is_about_four_characters_a_token() -> None:
    assert estimate_tokens("x" * 400) == 100 and estimate_tokens("") == 1


@pytest.mark.parametrize(
    ("section", "line", "field"),
    [
        ("[models]", "max_in_flight = 0", "models.max_in_flight"),
        ("[models.task]", "requests_per_minute = -1", "models.task.requests_per_minute"),
        ("[models]", 'tokens_per_minute = "many"', "models.tokens_per_minute"),
    ],
)
def test_bad_limit_names_the_field(tmp_path: Path, make_config: Any, section: str, line: str, field: str) -> None:
    path = make_config(extra=f"{section}\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert field in message and str(path) in message and "\n" not in message.strip()
