"""The gateway every LLM call goes through.

It holds one limit on in-flight LLM calls, bounds each attempt by a timeout, retries transient
errors by a :class:`~fedtextgrad_graph.models.retry.RetryPolicy` (the only retry layer: the
OpenAI client's own retries are off), and counts calls per role and client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from ..metrics import Generate
from .factory import Answerer, model_name
from .retry import RetryPolicy, error_kind, is_transient

__all__ = ["LLMCallError", "LLMCallRecord", "LLMGateway"]

logger = logging.getLogger(__name__)


class LLMCallError(Exception):
    """An LLM call that kept failing with transient errors until its retry budget ran out."""


@dataclass(frozen=True)
class LLMCallRecord:
    """Metadata of one finished LLM call; never its content. ``seconds`` is wall time from the
    request to the reply, including waiting for a concurrency slot and retry backoff;
    ``retry_wait_s`` is the part spent waiting between attempts, and ``errors`` names what
    each failed attempt got (``invalid_json``, ``http_429``, ``APITimeoutError``...)."""

    role: str
    client_id: str | None
    round: int | None
    model: str
    seconds: float
    attempts: int
    ok: bool
    retry_wait_s: float = 0.0
    errors: tuple[str, ...] = ()


class LLMGateway:
    """Runs chat-model calls under one concurrency limit, with retries and call accounting."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        on_call: Callable[[LLMCallRecord], None] | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
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
        errors: list[str] = []
        waited = 0.0
        while True:
            try:
                async with self._limit():
                    text = await asyncio.wait_for(self._attempt(model, system, user, messages), self.timeout_s)
                break
            except Exception as exc:
                errors.append(error_kind(exc))
                delay = self.retry.delay(exc, retry=len(errors), waited_s=waited)
                if delay is None:
                    self._record(model, role, client_id, round, started, waited, errors, ok=False)
                    if not is_transient(exc):
                        raise
                    who = f"{role} model {model_name(model)}" + (f" of {client_id}" if client_id else "")
                    raise LLMCallError(
                        f"{who}: {errors[-1]} after {len(errors)} attempt(s) and {waited:.0f} s of retry waits "
                        f"(retry budget: [models] max_retries = {self.retry.max_retries}, "
                        f"retry_max_wait_s = {self.retry.max_wait_s:g})"
                    ) from exc
                # The kind only (an error's message may quote the request), and one warning per
                # call: an outage would otherwise print a line per retry of every call in flight.
                level = logging.WARNING if len(errors) == 1 else logging.INFO
                logger.log(level, "%s from %s model; retry %d in %.1fs", errors[-1], role, len(errors), delay)
                await asyncio.sleep(delay)
                waited += delay
        self._record(model, role, client_id, round, started, waited, errors, ok=True)
        return text

    @staticmethod
    async def _attempt(model: BaseChatModel | Answerer, system: str | None, user: str, messages: Sequence[BaseMessage]) -> str:
        if isinstance(model, Answerer):
            return str(await model.answer(system or "", user))
        return str((await model.ainvoke(messages)).text)

    def bind(
        self, model: BaseChatModel | Answerer, *, role: str, client_id: str | None = None, round: int | None = None
    ) -> Generate:
        """An async ``generate(system, user)`` that sends every call through this gateway."""

        async def generate(system: str, user: str) -> str:
            return await self.generate(model, system, user, role=role, client_id=client_id, round=round)

        return generate

    def _record(
        self,
        model: BaseChatModel | Answerer,
        role: str,
        client_id: str | None,
        round: int | None,
        started: float,
        waited: float,
        errors: list[str],
        *,
        ok: bool,
    ) -> None:
        self.calls[(role, client_id)] += 1
        if self.on_call is not None:
            seconds = time.perf_counter() - started
            attempts = len(errors) + ok
            self.on_call(LLMCallRecord(role, client_id, round, model_name(model), seconds, attempts, ok, waited, tuple(errors)))

    def count(self, *, role: str | None = None, client_id: str | None = None) -> int:
        """Calls made so far, optionally for one role and/or client."""
        return sum(
            n for (r, c), n in self.calls.items() if (role is None or r == role) and (client_id is None or c == client_id)
        )
