"""One log line per endpoint outage, not one per failed call.

While an endpoint keeps failing, every call in flight retries on its own; the log says once per
endpoint and kind of error what is wrong and for how long calls keep trying, and once when the
endpoint answers again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from langchain_core.language_models import BaseChatModel

from .factory import Answerer, model_name
from .retry import error_kind

__all__ = ["OutageLog", "endpoint_of", "endpoint_url", "failure_reason"]

OPENAI_DEFAULT_ENDPOINT = "https://api.openai.com/v1"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def endpoint_url(model: BaseChatModel | Answerer) -> str | None:
    """The URL a model's calls go to, without credentials or query; None for a model without
    one (an app, the simulated model, a provider that does not say)."""
    if not isinstance(model, BaseChatModel) and isinstance(model, Answerer):  # BaseChatModel: the cheap check
        return None
    url = getattr(model, "openai_api_base", None)
    if url is None and type(model).__name__ in ("ChatOpenAI", "AzureChatOpenAI"):
        url = OPENAI_DEFAULT_ENDPOINT
    if url is None:
        url = getattr(model, "base_url", None)
    return _without_credentials(url) if isinstance(url, str) and url else None


def endpoint_of(model: BaseChatModel | Answerer) -> str:
    """Where a model's calls go, for messages: ``endpoint URL``, or ``model NAME`` without a URL."""
    url = endpoint_url(model)
    return f"endpoint {url}" if url is not None else f"model {model_name(model)}"


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError) or "connection refused" in str(current).lower():
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def failure_reason(exc: BaseException) -> str:
    """What an endpoint's failed attempt says about it, in words (never the error's message)."""
    kind = error_kind(exc)
    if kind == "invalid_json":
        return "sent a reply that is not valid JSON"
    if kind == "http_429":
        return "is rate limiting (HTTP 429)"
    if kind.startswith("http_"):
        return f"answers HTTP {kind.removeprefix('http_')}"
    if isinstance(exc, TimeoutError) or "Timeout" in kind:
        return "did not answer in time (timeout)"
    if _refused(exc):
        return "unreachable (connection refused)"
    if isinstance(exc, ConnectionError) or "Connect" in kind or "Protocol" in kind:
        return f"unreachable ({kind})"
    return kind


@dataclass
class _Outage:
    started: float
    kinds: set[str] = field(default_factory=set)


class OutageLog:
    """Which endpoints are failing now, and what has been said about them.

    Args:
        clock: Seconds, monotonic (for the outage's length in the recovery line).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._open: dict[str, _Outage] = {}

    def failed(self, endpoint: str, exc: BaseException, budget: str) -> str | None:
        """The line to log for a failed attempt that will be retried, or None when this
        endpoint's outage was already announced with this kind of error."""
        outage = self._open.setdefault(endpoint, _Outage(self._clock()))
        kind = error_kind(exc)
        if kind in outage.kinds:
            return None
        outage.kinds.add(kind)
        return f"{endpoint} {failure_reason(exc)}; retrying each call for up to {budget}"

    @property
    def ongoing(self) -> bool:
        """Whether an endpoint is failing now (an outage not yet over)."""
        return bool(self._open)

    def succeeded(self, endpoint: str) -> str | None:
        """The line to log when a call to ``endpoint`` succeeds during an outage, else None."""
        outage = self._open.pop(endpoint, None)
        if outage is None:
            return None
        kinds = ", ".join(sorted(outage.kinds))
        return f"{endpoint} answers again after {self._clock() - outage.started:.0f} s of errors ({kinds})"
