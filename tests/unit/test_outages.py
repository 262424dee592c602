"""An endpoint outage is logged once per endpoint and kind of error, and once when it ends."""

from __future__ import annotations

import asyncio

import pytest
from langchain_openai import ChatOpenAI

from fedtextgrad_graph.models import LLMCallError, LLMGateway, RetryPolicy
from fedtextgrad_graph.models.outages import (
    OutageLog,
    endpoint_of,
    endpoint_url,
    failure_reason,
)

from .test_retry import Flaky, StatusError


def refused() -> ConnectionError:
    error = ConnectionError("Connection error.")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


def test_an_outage_is_announced_once_per_kind_and_its_end_once() -> None:
    now = [100.0]
    log = OutageLog(clock=lambda: now[0])
    first = log.failed("endpoint http://h:1/v1", refused(), "60 s")
    assert first == "endpoint http://h:1/v1 unreachable (connection refused); retrying each call for up to 60 s"
    assert [log.failed("endpoint http://h:1/v1", refused(), "60 s") for _ in range(30)] == [None] * 30
    assert "rate limiting (HTTP 429)" in str(log.failed("endpoint http://h:1/v1", StatusError(429), "60 s"))
    assert log.failed("endpoint http://other/v1", refused(), "60 s") is not None  # another endpoint
    now[0] = 112.0
    assert log.succeeded("endpoint http://h:1/v1") == (
        "endpoint http://h:1/v1 answers again after 12 s of errors (ConnectionError, http_429)"
    )
    assert log.succeeded("endpoint http://h:1/v1") is None  # no outage open any more
    assert log.failed("endpoint http://h:1/v1", refused(), "60 s") is not None  # a new outage is news


def test_reasons_are_words_never_the_error_message() -> None:
    leaky = StatusError(503)
    leaky.args = ("upstream echoed: SECRET",)
    assert failure_reason(leaky) == "answers HTTP 503"
    assert failure_reason(TimeoutError("SECRET")) == "did not answer in time (timeout)"
    assert failure_reason(ConnectionResetError("SECRET")) == "unreachable (ConnectionResetError)"


def test_the_endpoint_url_drops_credentials_and_query() -> None:
    model = ChatOpenAI(model="m", api_key="k", base_url="http://user:pw@127.0.0.1:9/v1/?token=SECRET")
    assert endpoint_url(model) == "http://127.0.0.1:9/v1"
    assert endpoint_url(ChatOpenAI(model="m", api_key="k")) == "https://api.openai.com/v1"
    assert endpoint_of(Flaky(respond=lambda s, u: "ok", errors=[])) == "model scripted"


async def test_calls_in_flight_during_an_outage_log_one_line_then_one_recovery(caplog: pytest.LogCaptureFixture) -> None:
    gateway = LLMGateway(max_concurrency=8, retry=RetryPolicy(backoff_s=0.01))
    models = [Flaky(respond=lambda s, u: "ok", errors=[refused(), refused(), refused()]) for _ in range(12)]
    with caplog.at_level("WARNING", logger="fedtextgrad_graph.models.gateway"):
        await asyncio.gather(*(gateway.generate(m, None, "q", role="task") for m in models))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("model scripted unreachable (connection refused); retrying each call for up to 60 s")
    assert lines[1].startswith("model scripted answers again after")


async def test_giving_up_names_the_endpoint_url() -> None:
    gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(max_retries=1, backoff_s=0.01))
    model = ChatOpenAI(model="m", api_key="k", base_url="http://user:pw@127.0.0.1:9/v1")

    async def refuse(*args: object, **kwargs: object) -> None:
        raise refused()

    object.__setattr__(model, "ainvoke", refuse)
    with pytest.raises(LLMCallError) as info:
        await gateway.generate(model, None, "q", role="task")
    message = str(info.value)
    assert message.startswith("task model m at http://127.0.0.1:9/v1: unreachable (connection refused); ConnectionError after 2")
    assert "pw" not in message
