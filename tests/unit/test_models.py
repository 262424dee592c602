"""Chat-model construction from specs, the model router, and the gateway's limit and retries."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from pydantic import PrivateAttr

from fedtextgrad_graph.config import ConfigError, ModelSpec, parse_config
from fedtextgrad_graph.models import LLMCallError, LLMGateway, ModelRouter, RetryPolicy, create_chat_model
from fedtextgrad_graph.models.simulated import SimulatedChatModel

from ..conftest import ScriptedChatModel


class FlakyModel(ScriptedChatModel):
    """Raises the given errors in turn, then answers."""

    errors: list
    _attempts: int = PrivateAttr(default=0)

    def _generate(self, messages, stop=None, run_manager=None, **kw):
        self._attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        return super()._generate(messages, stop, run_manager, **kw)


class RateLimited(Exception):
    status_code = 429


async def test_transient_errors_are_retried_with_backoff():
    model = FlakyModel(respond=lambda s, u: "ok", errors=[TimeoutError("slow"), RateLimited("429")])
    records = []
    gateway = LLMGateway(max_concurrency=2, retry=RetryPolicy(max_retries=3, backoff_s=0.01), on_call=records.append)
    assert await gateway.generate(model, "sys", "hi", role="task", client_id="c1", round=1) == "ok"
    assert model._attempts == 3
    [record] = records
    assert (record.role, record.client_id, record.round, record.attempts, record.ok) == ("task", "c1", 1, 3, True)
    assert record.errors == ("TimeoutError", "http_429") and record.retry_wait_s > 0
    assert gateway.count(role="task", client_id="c1") == 1


async def test_retries_give_up_and_other_errors_are_not_retried():
    gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(max_retries=1, backoff_s=0.01))
    model = FlakyModel(respond=lambda s, u: "ok", errors=[TimeoutError(), TimeoutError()])
    with pytest.raises(LLMCallError, match="task model scripted: TimeoutError after 2 attempt"):
        await gateway.generate(model, None, "hi", role="task")
    assert model._attempts == 2
    bad = FlakyModel(respond=lambda s, u: "ok", errors=[ValueError("bad request")])
    with pytest.raises(ValueError):
        await gateway.generate(bad, None, "hi", role="task")
    assert bad._attempts == 1


async def test_gateway_limits_calls_in_flight():
    model = SimulatedChatModel(latency_s=0.05)
    gateway = LLMGateway(max_concurrency=3)
    in_flight = peak = 0
    original = model._agenerate

    async def tracked(*args, **kwargs):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await original(*args, **kwargs)
        finally:
            in_flight -= 1

    object.__setattr__(model, "_agenerate", tracked)
    await asyncio.gather(*(gateway.generate(model, "s", f"q{i}", role="task") for i in range(12)))
    assert peak == 3 and gateway.count() == 12


def test_no_model_and_no_key_lists_the_options(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        create_chat_model(ModelSpec())
    for option in ("--model simulated", "OPENAI_API_KEY", "--base-url"):
        assert option in str(info.value)
    with pytest.raises(ConfigError, match="needs an API key: set OPENAI_API_KEY"):
        create_chat_model(ModelSpec(model="openai:gpt-4o-mini"))


@pytest.mark.parametrize("name", ["openai:gpt-4o-mini", "gpt-4o-mini"])
def test_a_named_model_without_a_key_says_what_to_do_in_one_line(monkeypatch, name):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        create_chat_model(ModelSpec(model=name))
    message = str(info.value)
    assert "\n" not in message and "No model is configured" not in message
    for option in ("set OPENAI_API_KEY", "--model simulated", "--base-url"):
        assert option in message


def test_openai_compatible_server_needs_no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = create_chat_model(ModelSpec(model="my-local-model", base_url="http://127.0.0.1:9/v1"), timeout_s=5)
    assert type(model).__name__ == "ChatOpenAI"
    assert model.model_name == "my-local-model" and model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.max_retries == 0  # the gateway owns retries


def test_api_key_env_must_be_set(monkeypatch):
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(ConfigError, match="MY_KEY"):
        create_chat_model(ModelSpec(model="openai:gpt-4o-mini", api_key_env="MY_KEY"))
    monkeypatch.setenv("MY_KEY", "sk-test")
    model = create_chat_model(ModelSpec(model="openai:gpt-4o-mini", api_key_env="MY_KEY"))
    assert model.openai_api_key.get_secret_value() == "sk-test"


def test_simulated_spec_takes_kwargs():
    model = create_chat_model(ModelSpec(model="simulated", kwargs={"latency_s": 0.25}))
    assert isinstance(model, SimulatedChatModel) and model.latency_s == 0.25


def _config(**models):
    return parse_config(
        {
            "tasks": {"t": {"format": "bbh", "path": "x.json"}},
            "federation": {"clients": [{"id": "a"}, {"id": "b", "models": {"task": {"model": "simulated", "kwargs": {"latency_s": 0.1}}}}]},
            "models": {"model": "simulated", **models},
        }
    )


def test_router_builds_each_spec_once_and_honours_client_overrides():
    router = ModelRouter.from_config(_config())
    assert router.get("task", "a") is router.get("optimizer", "b") is router.get("judge")
    assert router.get("task", "b") is not router.get("task", "a")
    assert router.get("task", "b").latency_s == 0.1
    assert router.simulated and router.names()["task"] == "simulated"


def test_router_prefers_given_models_by_client_then_role():
    fake = GenericFakeChatModel(messages=iter([]))
    other = GenericFakeChatModel(messages=iter([]))
    router = ModelRouter.from_config(_config(), {"task": fake, "b.task": other})
    assert router.get("task", "a") is fake and router.get("task", "b") is other
    assert isinstance(router.get("optimizer", "a"), SimulatedChatModel)
    with pytest.raises(ConfigError, match="unknown role"):
        ModelRouter.from_config(_config(), {"critic": fake})


def test_unknown_kwargs_fail_when_the_model_is_built(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="unknown option in kwargs.*latency_s"):
        create_chat_model(ModelSpec(model="openai:local", base_url="http://127.0.0.1:9/v1", kwargs={"latency_s": 0.3}))


def test_provider_errors_name_the_role_and_client(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = _config(optimizer={"model": "openai:gpt-4o-mini"})
    with pytest.raises(ConfigError, match=r"models \(optimizer model\).*needs an API key: set OPENAI_API_KEY"):
        ModelRouter.from_config(config).build_all()
