"""Per-endpoint limits users know: requests in flight, requests per minute, tokens per minute.

Calls to the same endpoint (base URL and model name; the model name alone for a model without
a URL) share one :class:`EndpointLimiter`, across roles and clients, so a paid API and a local
server are each driven at their own pace in one run. The per-minute limits are sliding
60-second windows: in any 60 s, no more than ``requests_per_minute`` requests are admitted,
and no more than ``tokens_per_minute`` tokens, counted as a request's estimate (its text's
characters / 4) when it is admitted and corrected to the provider's reported usage when its
reply arrives.

The limiter sits in the gateway, not on the chat model (langchain-core's
``InMemoryRateLimiter``, attached with ``rate_limiter=``): it must also cover LangChain apps
(which have no chat model here), be shared by the distinct model objects of several roles on
one endpoint, and count tokens as well as requests.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from ..config import ModelSpec
from .factory import Answerer, model_name
from .outages import endpoint_url

__all__ = ["EndpointLimiter", "EndpointLimiters", "EndpointLimits", "estimate_tokens"]

WINDOW_S = 60.0
CHARS_PER_TOKEN = 4

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def estimate_tokens(text: str) -> int:
    """A request's tokens before it is sent: about four characters a token, at least one."""
    return max(1, len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class EndpointLimits:
    """The limits of one endpoint; ``None``: no limit."""

    max_in_flight: int | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: int | None = None

    @classmethod
    def of(cls, spec: ModelSpec) -> EndpointLimits:
        return cls(spec.max_in_flight, spec.requests_per_minute, spec.tokens_per_minute)

    def tightest(self, other: EndpointLimits) -> EndpointLimits:
        """Both limits at once (two specs naming one endpoint): the lower of each."""

        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        in_flight = low(self.max_in_flight, other.max_in_flight)
        tokens = low(self.tokens_per_minute, other.tokens_per_minute)
        return EndpointLimits(
            None if in_flight is None else int(in_flight),
            low(self.requests_per_minute, other.requests_per_minute),
            None if tokens is None else int(tokens),
        )

    def share(self, fraction: float) -> EndpointLimits:
        """``fraction`` of each limit, but at least one (request in flight, request or token a
        minute) where the limit was: one of several processes' part of an endpoint's limits."""

        def part(limit: float | None) -> float | None:
            return None if limit is None else max(min(limit, 1.0), limit * fraction)

        in_flight, tokens = part(self.max_in_flight), part(self.tokens_per_minute)
        return EndpointLimits(
            None if in_flight is None else int(in_flight), part(self.requests_per_minute), None if tokens is None else int(tokens)
        )

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_in_flight, self.requests_per_minute, self.tokens_per_minute))


class _Window:
    """What was admitted in the last 60 s, as ``[time, amount]`` entries (amounts correctable)."""

    def __init__(self, limit: float, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._entries: deque[list[float]] = deque()

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` fits in the window (0: now). An amount above the whole
        limit is admitted once the window is empty, rather than never."""
        now = self._clock()
        while self._entries and self._entries[0][0] <= now - WINDOW_S:
            self._entries.popleft()
        used = sum(entry[1] for entry in self._entries)
        if used + amount <= self.limit or not self._entries:
            return 0.0
        for admitted_at, spent in self._entries:
            used -= spent
            if used + amount <= self.limit or used <= 0:
                return admitted_at + WINDOW_S - now
        return 0.0  # unreachable: the loop frees the whole window

    def take(self, amount: float) -> list[float]:
        entry = [self._clock(), amount]
        self._entries.append(entry)
        return entry


class EndpointLimiter:
    """Admits one endpoint's requests within its :class:`EndpointLimits`.

    Args:
        limits: The endpoint's limits.
        clock: Monotonic seconds (injectable for tests).
        sleep: Awaits a number of seconds (injectable for tests).
    """

    def __init__(self, limits: EndpointLimits, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.limits = limits
        self._sleep = sleep
        self._in_flight = asyncio.Semaphore(limits.max_in_flight) if limits.max_in_flight else None
        self._requests = _Window(limits.requests_per_minute, clock) if limits.requests_per_minute else None
        self._tokens = _Window(limits.tokens_per_minute, clock) if limits.tokens_per_minute else None
        self._admission = asyncio.Lock()  # first come, first admitted
        self.in_flight = 0

    @asynccontextmanager
    async def admit(self, estimated_tokens: int) -> AsyncIterator[Callable[[int], None]]:
        """Wait until a request of ``estimated_tokens`` may go, and hold its slot while it runs.
        Yields ``settle(tokens)``: call it with the tokens the provider reported."""
        if self._in_flight is not None:
            await self._in_flight.acquire()
        try:
            entry = await self._pass_windows(estimated_tokens)
            self.in_flight += 1
            try:

                def settle(tokens: int) -> None:
                    if entry is not None:
                        entry[1] = tokens

                yield settle
            finally:
                self.in_flight -= 1
        finally:
            if self._in_flight is not None:
                self._in_flight.release()

    async def _pass_windows(self, estimated_tokens: int) -> list[float] | None:
        if self._requests is None and self._tokens is None:
            return None
        async with self._admission:
            while True:
                wait = max(
                    self._requests.wait_s(1) if self._requests else 0.0,
                    self._tokens.wait_s(estimated_tokens) if self._tokens else 0.0,
                )
                if wait <= 0:
                    break
                await self._sleep(wait)
            if self._requests is not None:
                self._requests.take(1)
            return self._tokens.take(estimated_tokens) if self._tokens is not None else None


def endpoint_key(model: BaseChatModel | Answerer) -> str:
    """Which limiter a model's calls share: its URL and model name, or the name alone."""
    url = endpoint_url(model)
    return f"{url} {model_name(model)}" if url else model_name(model)


class EndpointLimiters:
    """The limiters of one process's gateway, one per endpoint, created as models are built."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.share = 1.0  # this process's part of each endpoint's limits (set in worker processes)
        self._clock = clock
        self._sleep = sleep
        self._limits: dict[str, EndpointLimits] = {}
        self._limiters: dict[str, EndpointLimiter] = {}

    def configure(self, model: BaseChatModel | Answerer, spec: ModelSpec | EndpointLimits) -> None:
        """Apply a spec's limits to ``model``'s endpoint (the lowest of each wins when several
        specs name it). Call before the endpoint's first request."""
        limits = spec if isinstance(spec, EndpointLimits) else EndpointLimits.of(spec)
        if not limits.any:
            return
        key = endpoint_key(model)
        known = self._limits.get(key)
        merged = limits if known is None else known.tightest(limits)
        if merged != known:
            self._limits[key] = merged
            self._limiters.pop(key, None)

    def limiter(self, model: BaseChatModel | Answerer) -> EndpointLimiter | None:
        """The limiter of ``model``'s endpoint, or ``None`` when it has no limits."""
        if not self._limits:
            return None
        key = endpoint_key(model)
        limits = self._limits.get(key)
        if limits is None:
            return None
        if key not in self._limiters:
            part = limits if self.share == 1.0 else limits.share(self.share)
            self._limiters[key] = EndpointLimiter(part, clock=self._clock, sleep=self._sleep)
        return self._limiters[key]

    @asynccontextmanager
    async def admit(self, model: BaseChatModel | Answerer, text: str) -> AsyncIterator[Callable[[int], None]]:
        """Hold an admission to ``model``'s endpoint for a request of ``text`` (nothing to wait
        for without limits). Yields ``settle(tokens)`` for the provider's reported usage."""
        limiter = self.limiter(model)
        if limiter is None:
            yield _no_settle
            return
        async with limiter.admit(estimate_tokens(text)) as settle:
            yield settle


def _no_settle(tokens: int) -> None:
    """Nothing to correct: the endpoint has no token limit."""
