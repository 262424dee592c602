"""What the round graph's nodes need besides state: the server's models, its evaluation data,
the LLM gateway, and the transport that reaches the clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from ..aggregation import Aggregator, create_aggregator
from ..aggregation.surprisal import PromptLogprobs, completions_logprobs, create_estimator
from ..aggregation.uid import MergeMeter
from ..config import ConfigError, FedTextGradConfig
from ..data import ClientData, Example, FederatedData, TaskSplits, load_server_tasks
from ..metrics import Generate, Scorer, create_scorer, score_prompt
from ..models import Answerer, LLMCallRecord, LLMGateway, ModelRouter, RetryPolicy, ThreadBridge
from ..text import check_tokenizer
from ..transport import ClientTransport, transport_class
from .screening import create_screens

__all__ = ["FederationRuntime", "server_roles"]

@dataclass
class FederationRuntime:
    """The server side of a run. Nothing here is checkpointed. Across machines it holds no
    client's data: only the validation and test splits it scores prompts on (``evaluation``);
    in-process, ``client_data`` holds every client's share for the local transport.

    Build it with :meth:`create`; ``transport`` reaches the clients.
    """

    config: FedTextGradConfig
    models: ModelRouter
    gateway: LLMGateway
    bridge: ThreadBridge = field(repr=False)
    evaluation: dict[str, TaskSplits] = field(default_factory=dict, repr=False)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    client_data: dict[str, ClientData] = field(default_factory=dict, repr=False)
    transport: ClientTransport = field(init=False, repr=False)

    @classmethod
    def create(
        cls,
        config: FedTextGradConfig,
        *,
        transport: ClientTransport | None = None,
        data: FederatedData | None = None,
        models: Mapping[str, BaseChatModel | Answerer] | None = None,
        scorers: Mapping[str, Scorer] | None = None,
        on_call: Callable[[LLMCallRecord], None] | None = None,
    ) -> FederationRuntime:
        """Load data and build every model now, so bad input fails before any LLM call.

        Args:
            config: The run config; ``[transport] kind`` picks how clients are reached.
            transport: A ready transport instead of the configured one.
            data: Client data and server-held splits to use instead of loading the config's files
                (in-process runs).
            models: Ready chat models by role or ``"<client_id>.<role>"``; others come from
                config. The ``task`` role may also be an app (:class:`~fedtextgrad_graph.PromptedApp`).
            scorers: Metrics by task name, replacing the task's configured metric.
            on_call: Called with the metadata of every finished LLM call.
        """
        router = ModelRouter.from_config(config, models)
        try:
            check_tokenizer(config.aggregation.tokenizer)
        except ValueError as exc:
            raise ConfigError(f"aggregation.tokenizer: {exc}") from None
        try:
            create_aggregator(config.aggregation.strategy, _unused_generate)
        except ValueError as exc:
            raise ConfigError(f"aggregation.strategy: {exc}") from None
        try:
            create_estimator(config.aggregation.surprisal)
        except ValueError as exc:
            raise ConfigError(f"aggregation.surprisal: {exc}") from None
        try:
            create_screens(config.screening)
        except ValueError as exc:
            raise ConfigError(f"screening.screens: {exc}") from None
        limit = config.run.max_concurrency
        gateway = LLMGateway(
            max_concurrency=limit,
            retry=RetryPolicy.from_config(config.models),
            timeout_s=config.models.timeout_s,
            on_call=on_call,
            limiters=router.limiters,
        )
        transport_cls = None if transport else _transport_class(config)
        if data is None:
            data = transport_cls.load_data(config) if transport_cls else FederatedData({}, load_server_tasks(config))
        runtime = cls(config, router, gateway, ThreadBridge(limit), data.tasks, dict(scorers or {}), data.clients)
        try:
            router.build_all(runtime.roles_in_use(), client_ids=[None])
            if transport is None:
                assert transport_cls is not None  # looked up above whenever no transport is given
                transport = transport_cls.create(runtime)
            runtime.transport = transport
        except BaseException:
            runtime.bridge.close()
            raise
        return runtime

    async def aclose(self) -> None:
        """Close the transport and stop the worker threads."""
        try:
            await self.transport.aclose()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker threads (the transport is closed by :meth:`aclose`)."""
        self.bridge.close()

    def roles_in_use(self) -> list[str]:
        """The server roles this run calls (see :func:`server_roles`)."""
        return server_roles(self.config, self.evaluation)

    def models_in_use(self, roles: Iterable[str]) -> dict[str, str]:
        """Role -> model name of those of ``roles`` the server calls in this run, as built here
        (a step records them: a resume may run the next steps with other models)."""
        wanted = set(roles)
        return {role: self.models.name(role) for role in self.roles_in_use() if role in wanted}

    def generate(self, role: str, round: int | None = None) -> Generate:
        """An async ``generate(system, user)`` for one of the server's roles."""
        return self.gateway.bind(self.models.get(role), role=role, round=round)

    def scorer(self, task: str, round: int | None = None) -> Scorer:
        """The metric of ``task``; a judge metric uses the server's judge model."""
        if task in self.scorers:
            return self.scorers[task]
        metric = self.config.tasks[task].metric
        return create_scorer(metric, self.generate("judge", round) if metric == "judge" else None)

    def aggregator(self, round: int | None = None) -> Aggregator:
        return create_aggregator(self.config.aggregation.strategy, self.generate("aggregator", round))

    def merge_meter(self, round: int | None = None) -> MergeMeter:
        """Measures merges with the configured surprisal estimator and coverage check."""
        agg = self.config.aggregation
        generate = self.generate("aggregator", round) if agg.coverage == "entailment" else None
        return MergeMeter(create_estimator(agg.surprisal, self._prompt_logprobs()), coverage=agg.coverage, generate=generate)

    def _prompt_logprobs(self) -> PromptLogprobs | None:
        """Prompt logprobs from the aggregator's OpenAI-compatible server, if it has a ``base_url``."""
        spec = self.models.spec("aggregator")
        if not spec.base_url or not spec.model:
            return None
        key = os.environ.get(spec.api_key_env or "OPENAI_API_KEY")
        return completions_logprobs(spec.base_url, spec.model.removeprefix("openai:"), api_key=key, timeout_s=self.config.models.timeout_s)

    async def accuracy(self, prompt: str, examples: list[Example], task: str, *, round: int | None = None) -> tuple[int, int]:
        """``(correct, total)`` of ``prompt`` on server-held examples of ``task``."""
        return await score_prompt(prompt, examples, answer=self.generate("task", round), score=self.scorer(task, round))


def server_roles(config: FedTextGradConfig, held_tasks: Iterable[str]) -> list[str]:
    """The roles whose models the server calls: the aggregator for an LLM merge, and the task
    (and judge) models when it scores prompts on ``held_tasks``, the tasks whose data it holds."""
    try:
        merges_with_llm = create_aggregator(config.aggregation.strategy, _unused_generate).needs_model
    except ValueError:  # a strategy registered by code that is not loaded now
        merges_with_llm = True
    roles = ["aggregator"] if merges_with_llm or config.aggregation.coverage == "entailment" else []
    held = list(held_tasks)
    if held and (config.evaluation.mode == "server" or config.evaluation.test):
        roles.append("task")
        if any(config.tasks[task].metric == "judge" for task in held):
            roles.append("judge")
    return roles


async def _unused_generate(system: str, user: str) -> str:
    raise AssertionError("only used to check that the strategy exists")


def _transport_class(config: FedTextGradConfig) -> type[ClientTransport]:
    try:
        return transport_class(config.transport.kind)
    except ValueError as exc:
        raise ConfigError(f"transport.kind: {exc}") from None
    except ImportError as exc:
        raise ConfigError(
            f"transport.kind = {config.transport.kind!r} needs its extra: pip install 'fedtextgrad-graph[{config.transport.kind}]' ({exc})"
        ) from None
