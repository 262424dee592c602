"""The retry policy: what is transient, Retry-After, the attempt and wait budgets, timeouts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest

from fedtextgrad_graph.config import ConfigError, ModelSpec
from fedtextgrad_graph.models import LLMCallError, LLMGateway, RetryPolicy, create_chat_model
from fedtextgrad_graph.models.retry import MAX_BACKOFF_S, error_kind, is_transient, retry_after_s

from ..conftest import ScriptedChatModel


class StatusError(Exception):
    """An API error as the openai client raises it: a status code and the reply's headers."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"Error code: {status}")
        self.status_code = status
        self.response = SimpleNamespace(headers=headers or {})


def invalid_json() -> json.JSONDecodeError:
    try:
        json.loads('{"choices": [{"message": {"content": "Unterminated')
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("the body parsed")


def test_invalid_json_and_overload_are_transient_but_bad_requests_are_not():
    assert is_transient(invalid_json()) and error_kind(invalid_json()) == "invalid_json"
    assert is_transient(StatusError(429)) and is_transient(StatusError(503)) and is_transient(TimeoutError())
    assert not is_transient(StatusError(400)) and not is_transient(ValueError("bad"))
    assert error_kind(StatusError(503)) == "http_503"


def test_retry_after_in_seconds_milliseconds_and_http_dates():
    assert retry_after_s(StatusError(429, {"retry-after": "2"})) == 2
    assert retry_after_s(StatusError(429, {"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_s(StatusError(503, {"retry-after": date}), now=now.timestamp()) == 30
    for unreadable in ("soon", "-1", "nan", "inf"):
        assert retry_after_s(StatusError(429, {"retry-after": unreadable})) is None
    assert retry_after_s(StatusError(429)) is None and retry_after_s(TimeoutError()) is None


def test_retry_after_is_honoured_up_to_the_cap():
    policy = RetryPolicy(max_retries=5, backoff_s=0.01, max_wait_s=100, retry_after_cap_s=10)
    delay = policy.delay(StatusError(429, {"retry-after": "2"}), retry=1, waited_s=0)
    assert delay is not None and delay >= 2
    assert policy.delay(StatusError(503, {"retry-after": "3600"}), retry=1, waited_s=0) == 10


def test_backoff_doubles_up_to_its_ceiling_and_stops_at_the_budgets():
    policy = RetryPolicy(max_retries=20, backoff_s=1.0, max_wait_s=1000)
    delays = [policy.delay(TimeoutError(), retry=n, waited_s=0) for n in range(1, 11)]
    assert all(d is not None for d in delays)
    assert delays[0] < delays[2] < delays[3]  # 1, 4, 8 s before jitter (+-25 %)
    assert max(delays) <= MAX_BACKOFF_S * 1.25
    assert policy.delay(TimeoutError(), retry=21, waited_s=0) is None  # attempts spent
    assert policy.delay(TimeoutError(), retry=3, waited_s=1000) is None  # wait spent
    assert policy.delay(TimeoutError(), retry=3, waited_s=999.5) == 0.5  # the last wait fits the budget
    assert policy.delay(StatusError(429, {"retry-after": "5"}), retry=3, waited_s=999) is None
    assert policy.delay(ValueError(), retry=1, waited_s=0) is None


def test_the_default_budget_outlasts_a_30_second_outage():
    """Even with the shortest jitter, the default retries keep trying for more than 30 s."""
    policy = RetryPolicy()
    shortest = sum(min(policy.backoff_s * 2 ** (n - 1), MAX_BACKOFF_S) * 0.75 for n in range(1, policy.max_retries + 1))
    longest = sum(min(policy.backoff_s * 2 ** (n - 1), MAX_BACKOFF_S) * 1.25 for n in range(1, policy.max_retries + 1))
    assert shortest > 30 and longest <= policy.max_wait_s


class Flaky(ScriptedChatModel):
    """Raises the given errors in turn (or hangs where one is ``"hang"``), then answers."""

    errors: list

    async def _agenerate(self, messages, stop=None, run_manager=None, **kw):
        if self.errors:
            error = self.errors.pop(0)
            if error == "hang":
                await asyncio.sleep(3600)
            raise error
        return self._reply(messages)


async def test_invalid_json_is_retried_and_recorded():
    records = []
    gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(backoff_s=0.01), on_call=records.append)
    model = Flaky(respond=lambda s, u: "ok", errors=[invalid_json(), StatusError(503)])
    assert await gateway.generate(model, "sys", "hi", role="optimizer", client_id="c1") == "ok"
    [record] = records
    assert record.attempts == 3 and record.ok and record.errors == ("invalid_json", "http_503")


async def test_a_hang_past_the_timeout_is_retried():
    records = []
    gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(backoff_s=0.01), timeout_s=0.1, on_call=records.append)
    model = Flaky(respond=lambda s, u: "ok", errors=["hang"])
    assert await gateway.generate(model, None, "hi", role="task") == "ok"
    assert records[0].errors == ("TimeoutError",) and records[0].attempts == 2


async def test_giving_up_names_the_budget_and_never_the_prompt():
    records = []
    gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(max_retries=2, backoff_s=0.01), on_call=records.append)
    model = Flaky(respond=lambda s, u: "ok", errors=[StatusError(503)] * 3)
    with pytest.raises(LLMCallError) as info:
        await gateway.generate(model, "SECRET SYSTEM", "SECRET QUESTION", role="task", client_id="c2")
    message = str(info.value)
    assert "task model scripted of c2: http_503 after 3 attempt(s)" in message and "max_retries = 2" in message
    assert "SECRET" not in message
    assert records[0].ok is False and records[0].attempts == 3


async def test_one_retry_warning_per_outage_without_the_error_message(caplog):
    gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(backoff_s=0.01))
    leaky = StatusError(503)
    leaky.args = ("upstream echoed: SECRET QUESTION",)
    model = Flaky(respond=lambda s, u: "ok", errors=[leaky, leaky, leaky])
    with caplog.at_level("WARNING", logger="fedtextgrad_graph.models.gateway"):
        await gateway.generate(model, None, "SECRET QUESTION", role="task")
    assert len(caplog.records) == 2  # the outage and its end, not one per retry
    assert "HTTP 503" in caplog.text and "http_503" in caplog.text and "SECRET" not in caplog.text


def test_client_level_retries_are_refused():
    with pytest.raises(ConfigError, match=r"kwargs.max_retries: retries are set by \[models\] max_retries"):
        create_chat_model(ModelSpec(model="openai:gpt-4o-mini", base_url="http://127.0.0.1:1/v1", kwargs={"max_retries": 3}))
    model = create_chat_model(ModelSpec(model="openai:gpt-4o-mini", base_url="http://127.0.0.1:1/v1"))
    assert model.max_retries == 0
