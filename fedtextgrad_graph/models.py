"""Chat models per role, and the gateway every LLM call goes through.

The gateway holds the run's one limit on in-flight LLM calls, retries transient errors with
exponential backoff, and counts calls per role and client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from .config import ROLES, ConfigError, FedTextGradConfig, ModelSpec
from .simulated import SIMULATED_MODEL, SimulatedChatModel

__all__ = ["Answerer", "LLMCallRecord", "LLMGateway", "ModelRouter", "create_chat_model", "model_name"]

logger = logging.getLogger(__name__)

DEFAULT_OPENAI_MODEL = "openai:gpt-4o-mini"
NO_MODEL_MESSAGE = (
    "No model is configured and OPENAI_API_KEY is not set. Choose one:\n"
    "  --model simulated                      offline scripted replies (no LLM, for trying the pipeline)\n"
    "  OPENAI_API_KEY=... --model openai:gpt-4o-mini\n"
    "  --model openai:<name> --base-url http://host:port/v1   any OpenAI-compatible server (vLLM, Ollama, llama.cpp)\n"
    "  [models] model = \"provider:name\" in the config file (any init_chat_model string)"
)
_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_TRANSIENT_NAMES = {
    "APIConnectionError",
    "APITimeoutError",
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
    "ConnectError",
    "ReadTimeout",
    "ConnectTimeout",
    "RemoteProtocolError",
}


@runtime_checkable
class Answerer(Protocol):
    """Anything that answers a question under a system prompt, like a LangChain app
    (:class:`~fedtextgrad_graph.PromptedApp`); usable as the ``task`` model."""

    name: str

    async def answer(self, system_prompt: str, question: str) -> str: ...


def model_name(model: BaseChatModel | Answerer) -> str:
    """A chat model's (or app's) name, for logs and results."""
    if isinstance(model, Answerer):
        return f"app:{model.name}"
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or model._llm_type)


def _is_openai(name: str, spec: ModelSpec) -> bool:
    return name.startswith("openai:") or (spec.base_url is not None and ":" not in name)


def create_chat_model(spec: ModelSpec, *, timeout_s: float | None = None) -> BaseChatModel:
    """Build a LangChain chat model from a spec (``init_chat_model`` string or ``simulated``)."""
    name = spec.model
    if name is None:
        if not os.environ.get("OPENAI_API_KEY"):
            raise ConfigError(NO_MODEL_MESSAGE)
        name = DEFAULT_OPENAI_MODEL
    if name == SIMULATED_MODEL:
        return SimulatedChatModel(**spec.kwargs)
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if spec.temperature is not None:
        kwargs["temperature"] = spec.temperature
    if spec.base_url:
        kwargs["base_url"] = spec.base_url
    if spec.api_key_env:
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise ConfigError(f"models.api_key_env: environment variable {spec.api_key_env} is not set")
        kwargs["api_key"] = key
    if _is_openai(name, spec):
        if ":" not in name:
            name = f"openai:{name}"
        if "api_key" not in kwargs and not os.environ.get("OPENAI_API_KEY"):
            if not spec.base_url:
                raise ConfigError(f"model {name!r} needs OPENAI_API_KEY.\n{NO_MODEL_MESSAGE}")
            kwargs["api_key"] = "not-needed"  # local OpenAI-compatible servers ignore the key
        kwargs.setdefault("max_retries", 0)  # the gateway owns retries
        if timeout_s is not None:
            kwargs.setdefault("timeout", timeout_s)
    from langchain.chat_models import init_chat_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = init_chat_model(name, **kwargs)
        except ConfigError:
            raise
        except Exception as exc:  # providers raise their own types for bad settings
            raise ConfigError(f"model {name!r}: {exc}") from None
    unknown = [str(w.message) for w in caught if "not default parameter" in str(w.message)]
    if unknown:
        raise ConfigError(f"model {name!r}: unknown option in kwargs: {'; '.join(unknown)}")
    return model


class ModelRouter:
    """Resolves the chat model of each role, per client, building each distinct spec once.

    Args:
        config: The run config; its ``[models]`` specs are used where ``models`` has no entry.
        models: Ready chat models keyed by role (``"task"``) or by ``"<client_id>.<role>"``.
    """

    def __init__(self, config: FedTextGradConfig, models: Mapping[str, BaseChatModel | Answerer] | None = None) -> None:
        self._config = config
        self._given = dict(models or {})
        unknown = [k for k in self._given if k.rpartition(".")[2] not in ROLES]
        if unknown:
            raise ConfigError(f"models: unknown role key(s) {unknown}; use {list(ROLES)} or '<client_id>.<role>'")
        misplaced = [k for k, m in self._given.items() if isinstance(m, Answerer) and k.rpartition(".")[2] != "task"]
        if misplaced:
            raise ConfigError(f"models: {misplaced}: an app can only be the task model")
        self._cache: dict[str, BaseChatModel] = {}

    def _given_model(self, role: str, client_id: str | None) -> BaseChatModel | Answerer | None:
        return self._given.get(f"{client_id}.{role}") or self._given.get(role)

    def spec(self, role: str, client_id: str | None = None) -> ModelSpec:
        return self._config.model_spec(role, client_id)

    def get(self, role: str, client_id: str | None = None) -> BaseChatModel | Answerer:
        given = self._given_model(role, client_id)
        if given is not None:
            return given
        spec = self.spec(role, client_id)
        key = spec.model_dump_json()
        if key not in self._cache:
            try:
                self._cache[key] = create_chat_model(spec, timeout_s=self._config.models.timeout_s)
            except ConfigError as exc:
                where = f"models ({role} model" + (f" of client {client_id}" if client_id else "") + ")"
                raise ConfigError(f"{where}: {exc}") from None
        return self._cache[key]

    def build_all(self) -> None:
        """Create every model the run will use, so bad settings fail before any LLM call."""
        for client_id in [None, *self._config.federation.client_ids()]:
            for role in ROLES:
                self.get(role, client_id)

    def name(self, role: str, client_id: str | None = None) -> str:
        given = self._given_model(role, client_id)
        if given is not None:
            return model_name(given)
        return self.spec(role, client_id).model or DEFAULT_OPENAI_MODEL

    def names(self) -> dict[str, str]:
        """Role -> model name for the server, plus ``<client>.<role>`` where a client differs."""
        names = {role: self.name(role) for role in ROLES}
        for cid in self._config.federation.client_ids():
            for role in ROLES:
                if self.name(role, cid) != names[role]:
                    names[f"{cid}.{role}"] = self.name(role, cid)
        return names

    @property
    def simulated(self) -> bool:
        """True when any role of any client uses the simulated model."""
        return SIMULATED_MODEL in self.names().values()


@dataclass(frozen=True)
class LLMCallRecord:
    """Metadata of one finished LLM call; never its content. ``seconds`` is wall time from the
    request to the reply, including waiting for a concurrency slot and retry backoff."""

    role: str
    client_id: str | None
    round: int | None
    model: str
    seconds: float
    attempts: int
    ok: bool


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if getattr(exc, "status_code", None) in _TRANSIENT_STATUS:
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


class LLMGateway:
    """Runs chat-model calls under one concurrency limit, with retries and call accounting."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        on_call: Callable[[LLMCallRecord], None] | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self.on_call = on_call
        self._semaphore: asyncio.Semaphore | None = None
        self.calls: Counter[tuple[str, str | None]] = Counter()

    def _limit(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._semaphore

    async def generate(
        self,
        model: BaseChatModel | Answerer,
        system: str | None,
        user: str,
        *,
        role: str,
        client_id: str | None = None,
        round: int | None = None,
    ) -> str:
        """One chat completion (or app run): system prompt + user message in, reply text out."""
        messages = ([SystemMessage(system)] if system else []) + [HumanMessage(user)]
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._limit():
                    if isinstance(model, Answerer):
                        text = str(await model.answer(system or "", user))
                    else:
                        text = str((await model.ainvoke(messages)).text)
                break
            except Exception as exc:
                if attempt > self._max_retries or not _is_transient(exc):
                    self._record(model, role, client_id, round, started, attempt, ok=False)
                    raise
                delay = self._backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                logger.warning("transient %s from %s (%s); retry %d in %.1fs", type(exc).__name__, role, exc, attempt, delay)
                await asyncio.sleep(delay)
        self._record(model, role, client_id, round, started, attempt, ok=True)
        return text

    def _record(self, model: BaseChatModel | Answerer, role: str, client_id: str | None, round: int | None, started: float, attempts: int, *, ok: bool) -> None:
        self.calls[(role, client_id)] += 1
        if self.on_call is not None:
            self.on_call(LLMCallRecord(role, client_id, round, model_name(model), time.perf_counter() - started, attempts, ok))

    def count(self, *, role: str | None = None, client_id: str | None = None) -> int:
        """Calls made so far, optionally for one role and/or client."""
        return sum(
            n for (r, c), n in self.calls.items() if (role is None or r == role) and (client_id is None or c == client_id)
        )
