"""The gateway every LLM call goes through.

It holds one limit on in-flight LLM calls, retries transient errors with exponential backoff,
and counts calls per role and client.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from ..metrics import Generate
from .factory import Answerer, model_name

__all__ = ["LLMCallRecord", "LLMGateway"]

logger = logging.getLogger(__name__)

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

    def bind(
        self, model: BaseChatModel | Answerer, *, role: str, client_id: str | None = None, round: int | None = None
    ) -> Generate:
        """An async ``generate(system, user)`` that sends every call through this gateway."""

        async def generate(system: str, user: str) -> str:
            return await self.generate(model, system, user, role=role, client_id=client_id, round=round)

        return generate

    def _record(self, model: BaseChatModel | Answerer, role: str, client_id: str | None, round: int | None, started: float, attempts: int, *, ok: bool) -> None:
        self.calls[(role, client_id)] += 1
        if self.on_call is not None:
            self.on_call(LLMCallRecord(role, client_id, round, model_name(model), time.perf_counter() - started, attempts, ok))

    def count(self, *, role: str | None = None, client_id: str | None = None) -> int:
        """Calls made so far, optionally for one role and/or client."""
        return sum(
            n for (r, c), n in self.calls.items() if (role is None or r == role) and (client_id is None or c == client_id)
        )
