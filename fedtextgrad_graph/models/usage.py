"""Provider-reported token usage: read from each reply, summed by whoever is metering.

The gateway reports every finished call's usage (:func:`record_call_usage`) to the meters open
in the caller's context (:func:`metering`) whose ``client_id`` is the call's. A meter follows
its work across tasks and TextGrad's worker threads (context variables are copied there), so
concurrent requests on one site each count only their own calls. Counts a site reports back
(:func:`record_reported`) are added to the server's meters. Nothing is estimated: a reply
without usage is counted in ``calls_without_usage``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..wire import TokenCount

__all__ = ["TokenMeter", "add_tokens", "metering", "record_call_usage", "record_reported", "reply_usage", "tokens_or_unknown"]


def add_tokens(*counts: TokenCount | None) -> TokenCount:
    """The sum of several token counts (``None``: nothing to add)."""
    total = TokenCount(input=0, output=0, calls_without_usage=0)
    for count in counts:
        if count:
            total["input"] += count["input"]
            total["output"] += count["output"]
            total["calls_without_usage"] += count["calls_without_usage"]
    return total


def tokens_or_unknown(reported: Mapping[str, Any]) -> TokenCount:
    """The ``llm_tokens`` of a site's update or score; from a site that predates them, its
    ``llm_calls`` counted as calls without usage."""
    tokens = reported.get("llm_tokens")
    if tokens is not None:
        return add_tokens(tokens)
    return TokenCount(input=0, output=0, calls_without_usage=int(reported.get("llm_calls", 0)))


def reply_usage(message: Any) -> tuple[int, int] | None:
    """``(input, output)`` tokens a LangChain reply's provider reported (its
    ``usage_metadata``), or ``None`` when it reported none."""
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return None
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


class TokenMeter:
    """Sums the usage of the calls made for one client (``None``: the server) in its context."""

    def __init__(self, client_id: str | None) -> None:
        self.client_id = client_id
        self._count = add_tokens()

    def add(self, count: TokenCount) -> None:
        self._count = add_tokens(self._count, count)

    def count(self) -> TokenCount:
        """The tokens counted so far."""
        return add_tokens(self._count)


_METERS: ContextVar[tuple[TokenMeter, ...]] = ContextVar("fedtextgrad_token_meters", default=())


@contextmanager
def metering(*, client_id: str | None) -> Iterator[TokenMeter]:
    """Count the usage of the calls made for ``client_id`` (``None``: the server's own calls)
    within this block, including its tasks and worker threads."""
    meter = TokenMeter(client_id)
    token = _METERS.set((*_METERS.get(), meter))
    try:
        yield meter
    finally:
        _METERS.reset(token)


def record_call_usage(client_id: str | None, usage: tuple[int, int] | None) -> None:
    """One finished call's usage (``None``: it reported none), for the meters of ``client_id``."""
    input_tokens, output_tokens = usage or (0, 0)
    count = TokenCount(input=input_tokens, output=output_tokens, calls_without_usage=int(usage is None))
    for meter in _METERS.get():
        if meter.client_id == client_id:
            meter.add(count)


def record_reported(count: TokenCount) -> None:
    """Tokens a site reported for work the server asked of it, for the server's meters."""
    for meter in _METERS.get():
        if meter.client_id is None:
            meter.add(count)
