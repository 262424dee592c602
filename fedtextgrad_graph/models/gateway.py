"""The gateway every LLM call goes through.

It holds one limit on in-flight LLM calls, bounds each attempt by a timeout, retries transient
errors by a :class:`~fedtextgrad_graph.models.retry.RetryPolicy` (the only retry layer: the
OpenAI client's own retries are off), and counts calls per role and client, and the tokens
each call's provider reported (see :mod:`.usage`).
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
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config

from ..metrics import Generate
from ..replies import ReplyCounts, is_empty_reply
from ..wire import ReplyCount
from .call_context import traced_config
from .factory import Answerer, model_name
from .limits import EndpointLimiters
from .outages import OutageLog, endpoint_of, endpoint_url, failure_reason
from .retry import RetryPolicy, error_kind, is_transient
from .usage import record_call_usage, reply_usage

__all__ = ["LLMCallError", "LLMCallRecord", "LLMGateway"]

logger = logging.getLogger(__name__)


class LLMCallError(Exception):
    """An LLM call that kept failing with transient errors until its retry budget ran out."""


@dataclass(frozen=True)
class LLMCallRecord:
    """Metadata of one finished LLM call; never its content. ``seconds`` is wall time from the
    request to the reply, including waiting for a concurrency slot and retry backoff;
    ``retry_wait_s`` is the part spent waiting between attempts, and ``errors`` names what
    each failed attempt got (``invalid_json``, ``http_429``, ``APITimeoutError``, ``empty_reply``...);
    ``empty``: the reply returned was empty. ``input_tokens``/``output_tokens``: the prompt and
    completion tokens its provider reported, summed over its replies (an empty one retried
    included); ``None`` when no reply reported usage."""

    role: str
    client_id: str | None
    round: int | None
    model: str
    seconds: float
    attempts: int
    ok: bool
    retry_wait_s: float = 0.0
    errors: tuple[str, ...] = ()
    empty: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None


class LLMGateway:
    """Runs chat-model calls under one concurrency limit, with retries and call accounting."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        on_call: Callable[[LLMCallRecord], None] | None = None,
        limiters: EndpointLimiters | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.limiters = limiters or EndpointLimiters()  # per-endpoint limits (models/limits.py)
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_call = on_call
        self._semaphore: asyncio.Semaphore | None = None
        self.calls: Counter[tuple[str, str | None]] = Counter()
        self.outages = OutageLog()
        self.empty_replies: Counter[tuple[str, str | None]] = Counter()

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
        config = traced_config(role=role, client_id=client_id, round=round)
        started = time.perf_counter()
        errors: list[str] = []
        waited = 0.0
        usage: tuple[int, int] | None = None  # summed over the replies that reported it
        empty_retries = self.retry.empty_retries
        while True:
            try:
                async with self.limiters.admit(model, (system or "") + user) as settle, self._limit():
                    async with asyncio.timeout(self.timeout_s):
                        text, reported = await self._attempt(model, system, user, messages, config)
                    if reported is not None:
                        settle(reported[0] + reported[1])
                if reported is not None:
                    usage = reported if usage is None else (usage[0] + reported[0], usage[1] + reported[1])
                if not is_empty_reply(text) or empty_retries == 0:
                    break
                # An empty reply is often transient (an overloaded server): ask again, the same
                # call (one call in the counts, one more attempt in its record).
                empty_retries -= 1
                errors.append("empty_reply")
                logger.info("empty reply from %s model; retrying once more in %.1fs", role, self.retry.backoff_s)
                await asyncio.sleep(self.retry.backoff_s)
                waited += self.retry.backoff_s
                continue
            except Exception as exc:
                errors.append(error_kind(exc))
                delay = self.retry.delay(exc, retry=len(errors), waited_s=waited)
                if delay is None:
                    self._record(model, role, client_id, round, started, waited, errors, ok=False, usage=usage)
                    if not is_transient(exc):
                        raise
                    who = f"{role} model {model_name(model)}" + (f" of {client_id}" if client_id else "")
                    url = endpoint_url(model)
                    where = f" at {url}: {failure_reason(exc)};" if url is not None else ":"
                    raise LLMCallError(
                        f"{who}{where} {errors[-1]} after {len(errors)} attempt(s) and {waited:.0f} s of retry waits "
                        f"(retry budget: [models] max_retries = {self.retry.max_retries}, "
                        f"retry_max_wait_s = {self.retry.max_wait_s:g})"
                    ) from exc
                # The kind only (an error's message may quote the request), and one warning per
                # endpoint and kind while an outage lasts, not one per call in flight.
                announced = self.outages.failed(endpoint_of(model), exc, self._budget())
                if announced is not None:
                    logger.warning("%s", announced)
                logger.debug("%s from %s model; retry %d in %.1fs", errors[-1], role, len(errors), delay)
                await asyncio.sleep(delay)
                waited += delay
        if self.outages.ongoing and (recovered := self.outages.succeeded(endpoint_of(model))) is not None:
            logger.warning("%s", recovered)
        self._record(model, role, client_id, round, started, waited, errors, ok=True, empty=is_empty_reply(text), usage=usage)
        return text

    def _budget(self) -> str:
        return f"{self.retry.max_wait_s:g} s of waits and {self.retry.max_retries} retries ([models] retry_max_wait_s, max_retries)"

    @staticmethod
    async def _attempt(
        model: BaseChatModel | Answerer, system: str | None, user: str, messages: Sequence[BaseMessage], config: RunnableConfig
    ) -> tuple[str, tuple[int, int] | None]:
        """The reply's text and the ``(input, output)`` tokens its provider reported, if any.
        ``config`` (callbacks, metadata, tags) goes to the chat model, and to an app as the
        parent config of the runnables it invokes."""
        # BaseChatModel first: isinstance against the runtime-checkable Answerer protocol
        # inspects its attributes on every call.
        if isinstance(model, BaseChatModel):
            reply = await model.ainvoke(messages, config=config)
            return str(reply.text), reply_usage(reply)
        token = var_child_runnable_config.set(config)
        try:
            return str(await model.answer(system or "", user)), None
        finally:
            var_child_runnable_config.reset(token)

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
        empty: bool = False,
        usage: tuple[int, int] | None = None,
    ) -> None:
        self.calls[(role, client_id)] += 1
        self.empty_replies[(role, client_id)] += empty
        record_call_usage(client_id, role, usage, empty=empty)
        if self.on_call is not None:
            seconds = time.perf_counter() - started
            attempts = len(errors) + ok
            input_tokens, output_tokens = usage or (None, None)
            record = LLMCallRecord(
                role, client_id, round, model_name(model), seconds, attempts, ok, waited, tuple(errors), empty, input_tokens, output_tokens
            )
            self.on_call(record)

    def count(self, *, role: str | None = None, client_id: str | None = None) -> int:
        """Calls made so far, optionally for one role and/or client."""
        return sum(
            n for (r, c), n in self.calls.items() if (role is None or r == role) and (client_id is None or c == client_id)
        )

    def replies(self, *, client_id: str | None) -> ReplyCounts:
        """Calls made so far and the empty replies among them, by role, for exactly
        ``client_id`` (``None``: the server's own calls)."""
        return {
            role: ReplyCount(calls=n, empty=self.empty_replies[(role, c)]) for (role, c), n in self.calls.items() if c == client_id
        }
