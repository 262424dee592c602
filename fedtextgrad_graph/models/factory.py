"""Chat models per role: build them from specs, or take ready ones, and name them for records."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel

from ..config import ROLES, ConfigError, FedTextGradConfig, ModelsConfig, ModelSpec, RoleModels
from .simulated import SIMULATED_MODEL, SimulatedChatModel

__all__ = ["DEFAULT_OPENAI_MODEL", "Answerer", "ModelRouter", "create_chat_model", "model_name"]

DEFAULT_OPENAI_MODEL = "openai:gpt-4o-mini"
NO_MODEL_MESSAGE = (
    "No model is configured and OPENAI_API_KEY is not set. Choose one:\n"
    "  --model simulated                      offline scripted replies (no LLM, for trying the pipeline)\n"
    "  OPENAI_API_KEY=... --model openai:gpt-4o-mini\n"
    "  --model openai:<name> --base-url http://host:port/v1   any OpenAI-compatible server (vLLM, Ollama, llama.cpp)\n"
    "  [models] model = \"provider:name\" in the config file (any init_chat_model string)"
)



def _missing_key_message(name: str) -> str:
    """One line for an OpenAI model without a key: what to set, or what to use instead."""
    return (
        f"model {name!r} needs an API key: set OPENAI_API_KEY (or name another variable with [models] api_key_env), "
        "or use --model simulated (offline, no LLM), or --base-url http://host:port/v1 for an OpenAI-compatible server"
    )


@runtime_checkable
class Answerer(Protocol):
    """Anything that answers a question under a system prompt, like a LangChain app
    (:class:`~fedtextgrad_graph.PromptedApp`); usable as the ``task`` model."""

    name: str

    async def answer(self, system_prompt: str, question: str) -> str: ...


def model_name(model: BaseChatModel | Answerer) -> str:
    """A chat model's (or app's) name, for logs and results."""
    # BaseChatModel first: an isinstance against the runtime-checkable Answerer inspects attributes.
    if not isinstance(model, BaseChatModel) and isinstance(model, Answerer):
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
    if "max_retries" in spec.kwargs:
        raise ConfigError("kwargs.max_retries: retries are set by [models] max_retries (the gateway owns them)")
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
                raise ConfigError(_missing_key_message(name))
            kwargs["api_key"] = "not-needed"  # local OpenAI-compatible servers ignore the key
        kwargs["max_retries"] = 0  # the gateway owns retries: no second layer inside the client
        if timeout_s is not None:
            kwargs.setdefault("timeout", timeout_s)
    from langchain.chat_models import init_chat_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model: BaseChatModel = init_chat_model(name, **kwargs)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - providers raise their own types for bad settings
            if "OPENAI_API_KEY" in str(exc):  # a bare name the OpenAI client serves, e.g. gpt-4o-mini
                raise ConfigError(_missing_key_message(name)) from None
            raise ConfigError(f"model {name!r}: {exc}") from None
    unknown = [str(w.message) for w in caught if "not default parameter" in str(w.message)]
    if unknown:
        raise ConfigError(f"model {name!r}: unknown option in kwargs: {'; '.join(unknown)}")
    return model


class ModelRouter:
    """Resolves the chat model of each role, per client, building each distinct spec once.

    Args:
        models: The ``[models]`` specs, used where ``given`` has no entry.
        clients: Per-client model overrides, by client id (in-process federations).
        given: Ready chat models keyed by role (``"task"``) or by ``"<client_id>.<role>"``.
    """

    def __init__(
        self,
        models: ModelsConfig,
        *,
        clients: Mapping[str, RoleModels | None] | None = None,
        given: Mapping[str, BaseChatModel | Answerer] | None = None,
    ) -> None:
        self._models = models
        self._clients = dict(clients or {})
        self._given = dict(given or {})
        unknown = [k for k in self._given if k.rpartition(".")[2] not in ROLES]
        if unknown:
            raise ConfigError(f"models: unknown role key(s) {unknown}; use {list(ROLES)} or '<client_id>.<role>'")
        misplaced = [k for k, m in self._given.items() if isinstance(m, Answerer) and k.rpartition(".")[2] != "task"]
        if misplaced:
            raise ConfigError(f"models: {misplaced}: an app can only be the task model")
        self._cache: dict[str, BaseChatModel] = {}
        self._specs: dict[tuple[str, str | None], ModelSpec] = {}
        from .limits import EndpointLimiters  # here: limits imports this module

        self.limiters = EndpointLimiters()  # each model's [models] limits, by endpoint; for its gateway

    @classmethod
    def from_config(
        cls, config: FedTextGradConfig, given: Mapping[str, BaseChatModel | Answerer] | None = None
    ) -> ModelRouter:
        """The models of a run config: ``[models]`` plus each listed client's overrides."""
        # Only listed clients can override models; numbered ones (num_clients) use [models].
        return cls(config.models, clients={c.id: c.models for c in config.federation.clients}, given=given)

    @property
    def given(self) -> Mapping[str, BaseChatModel | Answerer]:
        """The ready models this router was given, by role or ``"<client_id>.<role>"``."""
        return self._given

    def _given_model(self, role: str, client_id: str | None) -> BaseChatModel | Answerer | None:
        return self._given.get(f"{client_id}.{role}") or self._given.get(role)

    def spec(self, role: str, client_id: str | None = None) -> ModelSpec:
        # Resolved once per role and client (the configs are frozen): every TextGrad step asks.
        key = (role, client_id if client_id in self._clients else None)
        if key not in self._specs:
            base = self._models.resolve(role)
            override = self._clients.get(client_id) if client_id else None
            self._specs[key] = override.resolve(role, base=base) if override else base
        return self._specs[key]

    def get(self, role: str, client_id: str | None = None) -> BaseChatModel | Answerer:
        given = self._given_model(role, client_id)
        spec = self.spec(role, client_id)
        if given is not None:
            self.limiters.configure(given, spec)
            return given
        key = spec.model_dump_json()
        if key not in self._cache:
            try:
                self._cache[key] = create_chat_model(spec, timeout_s=self._models.timeout_s)
            except ConfigError as exc:
                where = f"models ({role} model" + (f" of client {client_id}" if client_id else "") + ")"
                raise ConfigError(f"{where}: {exc}") from None
            self.limiters.configure(self._cache[key], spec)
        return self._cache[key]

    def build_all(self, roles: Iterable[str] = ROLES, *, client_ids: Iterable[str | None] | None = None) -> None:
        """Create the models of ``roles`` for the server and every client (or ``client_ids``),
        so bad settings fail before any LLM call."""
        for client_id in [None, *self._clients] if client_ids is None else client_ids:
            for role in roles:
                self.get(role, client_id)

    def name(self, role: str, client_id: str | None = None) -> str:
        given = self._given_model(role, client_id)
        if given is not None:
            return model_name(given)
        return self.spec(role, client_id).model or DEFAULT_OPENAI_MODEL

    def names(self, roles: Iterable[str] = ROLES) -> dict[str, str]:
        """Role -> model name for the server, plus ``<client>.<role>`` where a client differs."""
        roles = list(roles)
        names = {role: self.name(role) for role in roles}
        for cid in self._clients:
            for role in roles:
                if self.name(role, cid) != names[role]:
                    names[f"{cid}.{role}"] = self.name(role, cid)
        return names

    @property
    def simulated(self) -> bool:
        """True when any role of any client uses the simulated model."""
        return SIMULATED_MODEL in self.names().values()
