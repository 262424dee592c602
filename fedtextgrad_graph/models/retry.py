"""When an LLM call is retried, and how long to wait before the next attempt.

Transient errors are timeouts, dropped or refused connections, HTTP 408/409/425/429/5xx, and a
reply whose body is not valid JSON (an HTTP 200 cut short: the openai client raises a bare
``json.JSONDecodeError`` for it, outside its own error types). A 429 or 503 may say how long to
wait (``Retry-After`` in seconds or as an HTTP date, or ``retry-after-ms``): that wait is
honoured up to a cap. Otherwise delays double from ``backoff_s`` up to :data:`MAX_BACKOFF_S`,
with jitter. A call gives up after ``max_retries`` retries or ``max_wait_s`` seconds spent
waiting between attempts, whichever comes first.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from ..config import ModelsConfig

__all__ = ["MAX_BACKOFF_S", "RetryPolicy", "error_kind", "is_transient", "retry_after_s"]

MAX_BACKOFF_S = 8.0
"""The longest backoff delay (before jitter) when the endpoint names no wait of its own."""

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


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Whether the same request may succeed if sent again."""
    if isinstance(exc, (TimeoutError, ConnectionError, json.JSONDecodeError)):
        return True
    if _status(exc) in _TRANSIENT_STATUS:
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


def error_kind(exc: BaseException) -> str:
    """A short name for a failed attempt, for records and logs: never the error's message,
    which may quote the request."""
    if isinstance(exc, json.JSONDecodeError):
        return "invalid_json"
    status = _status(exc)
    return f"http_{status}" if status is not None else type(exc).__name__


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers if headers is not None and hasattr(headers, "get") else None


def retry_after_s(exc: BaseException, *, now: float | None = None) -> float | None:
    """The wait an error reply asks for (``retry-after-ms``, or ``Retry-After`` in seconds or
    as an HTTP date), in seconds; None when it names none or one that cannot be read."""
    headers = _headers(exc)
    if headers is None:
        return None
    if (ms := _number(headers.get("retry-after-ms"))) is not None:
        return ms / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    if (seconds := _number(value)) is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    """How transient LLM errors are retried (the ``[models]`` retry settings).

    Args:
        max_retries: Retries after the first attempt.
        backoff_s: The first backoff delay; each next one doubles, up to :data:`MAX_BACKOFF_S`.
        max_wait_s: Total seconds one call may spend waiting between attempts.
        retry_after_cap_s: The longest wait taken for an endpoint's ``Retry-After``.
        empty_retries: How often a call whose reply is empty is sent again (after
            ``backoff_s``); an empty reply that remains is returned, and counted.
    """

    max_retries: int = 8
    backoff_s: float = 1.0
    max_wait_s: float = 60.0
    retry_after_cap_s: float = 60.0
    empty_retries: int = 1

    @classmethod
    def from_config(cls, models: ModelsConfig) -> RetryPolicy:
        return cls(
            max_retries=models.max_retries,
            backoff_s=models.retry_backoff_s,
            max_wait_s=models.retry_max_wait_s,
            retry_after_cap_s=models.retry_after_cap_s,
            empty_retries=models.empty_reply_retries,
        )

    def delay(self, exc: BaseException, *, retry: int, waited_s: float) -> float | None:
        """Seconds to wait before retry number ``retry`` (1-based) after ``exc``, having waited
        ``waited_s`` so far in this call; None to give up."""
        if retry > self.max_retries or not is_transient(exc):
            return None
        left = self.max_wait_s - waited_s
        asked = retry_after_s(exc)
        if asked is not None:
            wait = min(asked * (1 + 0.1 * random.random()), self.retry_after_cap_s)
            return wait if wait <= left else None  # retrying sooner than asked would be refused again
        if left <= 0:
            return None
        backoff = min(self.backoff_s * 2.0 ** (retry - 1), MAX_BACKOFF_S) * (0.75 + 0.5 * random.random())
        return min(backoff, left)
