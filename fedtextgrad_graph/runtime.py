"""What the graph's nodes need besides state: config, private data, models, the LLM gateway."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel

from ._textgrad import import_textgrad
from .aggregation import Aggregator, check_tokenizer, create_aggregator
from .config import ConfigError, FedTextGradConfig
from .data import Example, FederatedData, build_federated_data
from .metrics import Generate, Scorer, create_scorer
from .models import Answerer, LLMCallRecord, LLMGateway, ModelRouter

__all__ = ["FederationRuntime"]

T = TypeVar("T")


@dataclass
class FederationRuntime:
    """Resources shared by every node of a run. Nothing here is checkpointed.

    TextGrad is synchronous: its calls run on ``executor`` threads and hop back onto the
    event loop for each LLM call, so every call shares the gateway's one concurrency limit.
    """

    config: FedTextGradConfig
    data: FederatedData
    models: ModelRouter
    gateway: LLMGateway
    executor: ThreadPoolExecutor = field(repr=False)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)

    @classmethod
    def create(
        cls,
        config: FedTextGradConfig,
        *,
        data: FederatedData | None = None,
        models: Mapping[str, BaseChatModel | Answerer] | None = None,
        scorers: Mapping[str, Scorer] | None = None,
        on_call: Callable[[LLMCallRecord], None] | None = None,
    ) -> FederationRuntime:
        """Load data and build every model now, so bad input fails before any LLM call.

        Args:
            config: The run config.
            data: Client data to use instead of loading the config's files.
            models: Ready chat models by role or ``"<client_id>.<role>"``; others come from
                config. The ``task`` role may also be an app (:class:`~fedtextgrad_graph.PromptedApp`).
            scorers: Metrics by task name, replacing the task's configured metric.
            on_call: Called with the metadata of every finished LLM call.
        """
        router = ModelRouter(config, models)
        router.build_all()
        # TextGrad's first import is seconds of blocking work: do it here, not on the event
        # loop inside the first client step (async servers such as `langgraph dev` refuse that).
        import_textgrad()
        try:
            check_tokenizer(config.aggregation.tokenizer)
        except ValueError as exc:
            raise ConfigError(f"aggregation.tokenizer: {exc}") from None
        data = data if data is not None else build_federated_data(config)
        limit = config.run.max_concurrency
        gateway = LLMGateway(
            max_concurrency=limit,
            max_retries=config.models.max_retries,
            backoff_s=config.models.retry_backoff_s,
            on_call=on_call,
        )
        executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="fedtextgrad")
        return cls(config, data, router, gateway, executor, dict(scorers or {}))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def generate(self, role: str, client_id: str | None = None, round: int | None = None) -> Generate:
        """An async ``generate(system, user)`` for one role of one client (or the server)."""
        model = self.models.get(role, client_id)

        async def generate(system: str, user: str) -> str:
            return await self.gateway.generate(model, system, user, role=role, client_id=client_id, round=round)

        return generate

    def scorer(self, task: str, client_id: str | None = None, round: int | None = None) -> Scorer:
        """The metric of ``task``; a judge metric uses the judge model of the client or server."""
        if task in self.scorers:
            return self.scorers[task]
        metric = self.config.tasks[task].metric
        judge = self.generate("judge", client_id, round) if metric == "judge" else None
        return create_scorer(metric, judge)

    def aggregator(self, round: int | None = None) -> Aggregator:
        strategy = self.config.aggregation.strategy
        return create_aggregator(strategy, None if strategy == "concat" else self.generate("aggregator", None, round))

    async def accuracy(
        self, prompt: str, examples: list[Example], task: str, *, client_id: str | None = None, round: int | None = None
    ) -> tuple[int, int]:
        """``(correct, total)`` of ``prompt`` as the task model's system prompt, all examples at once."""
        answer = self.generate("task", client_id, round)
        score = self.scorer(task, client_id, round)

        async def one(example: Example) -> bool:
            return await score(example.input, await answer(prompt, example.input), example.target)

        results = await asyncio.gather(*(one(ex) for ex in examples))
        return sum(results), len(results)

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking (TextGrad) work on the run's executor, in a copy of the caller's
        context (so LangChain callbacks and tracing follow it, as with ``asyncio.to_thread``)."""
        self._loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await self._loop.run_in_executor(self.executor, functools.partial(context.run, fn, *args))

    def wait_on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """From an executor thread: run ``coro`` on the run's event loop, in this thread's
        context, and wait for its result."""
        context = contextvars.copy_context()
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

        def copy_outcome(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                outcome.cancel()
            elif task.exception() is not None:
                outcome.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                outcome.set_result(task.result())

        def start() -> None:
            self._loop.create_task(coro, context=context).add_done_callback(copy_outcome)

        self._loop.call_soon_threadsafe(start)
        return outcome.result()
