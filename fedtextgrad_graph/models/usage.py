"""Provider-reported token usage: read from each reply, summed by whoever is metering.

The gateway reports every finished call's usage (:func:`record_call_usage`) to the meters open
in the caller's context (:func:`metering`) whose ``client_id`` is the call's. A meter follows
its work across tasks and TextGrad's worker threads (context variables are copied there), so
concurrent requests on one site each count only their own calls. Counts a site reports back
(:func:`record_reported`) are added to the server's meters. Nothing is estimated: a reply
without usage is counted in ``calls_without_usage``. A meter also keeps its calls by caller
and role (:data:`~fedtextgrad_graph.wire.Usage`): ``llm_usage`` in the records, and its empty
replies by role.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..wire import ReplyCount, RoleUsage, TokenCount, Usage

__all__ = [
    "SERVER_CALLER",
    "TokenMeter",
    "add_tokens",
    "add_usage",
    "metering",
    "record_call_usage",
    "record_reported",
    "reply_usage",
    "tokens_or_unknown",
    "usage_or_unknown",
    "usage_rows",
]

SERVER_CALLER = "server"
"""The caller of the server's own calls in :data:`~fedtextgrad_graph.wire.Usage`."""


def add_tokens(*counts: TokenCount | None) -> TokenCount:
    """The sum of several token counts (``None``: nothing to add)."""
    total = TokenCount(input=0, output=0, calls_without_usage=0)
    for count in counts:
        if count:
            total["input"] += count["input"]
            total["output"] += count["output"]
            total["calls_without_usage"] += count["calls_without_usage"]
    return total


def add_usage(*usages: Mapping[str, Mapping[str, RoleUsage]] | None) -> Usage:
    """The sum of several usages by caller and role (``None``: nothing to add)."""
    total: Usage = {}
    for usage in usages:
        for caller, roles in (usage or {}).items():
            mine = total.setdefault(caller, {})
            for role, n in roles.items():
                have = mine.setdefault(role, RoleUsage(calls=0, input=0, output=0, calls_without_usage=0))
                for key in ("calls", "input", "output", "calls_without_usage"):
                    have[key] += n[key]
    return total


def usage_rows(usage: Mapping[str, Mapping[str, RoleUsage]]) -> dict[str, RoleUsage]:
    """``usage`` summed by role (rows ``role <name>``), then, with several callers, by caller:
    the rows of the usage tables of ``status`` and the report."""
    by_role = add_usage(*({"": {f"role {role}": n for role, n in roles.items()}} for roles in usage.values()))
    rows = by_role.get("", {})
    if len(usage) > 1:
        by_caller = add_usage(*({"": {caller: n}} for caller, roles in sorted(usage.items()) for n in roles.values()))
        rows |= by_caller[""]
    return rows


def usage_or_unknown(caller: str, reported: Mapping[str, Any]) -> Usage:
    """The ``llm_usage`` of a site's update or score, under ``caller``; from a site that
    predates it, its calls and tokens under the role ``unknown``."""
    by_role = reported.get("llm_usage")
    if by_role is not None:
        return add_usage({caller: by_role})
    tokens = tokens_or_unknown(reported)
    return {caller: {"unknown": RoleUsage(calls=int(reported.get("llm_calls", 0)), **tokens)}}


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
        self._usage: Usage = {}
        self._empty: dict[str, int] = {}  # role -> empty replies of this meter's own calls

    def add(self, count: TokenCount, usage: Usage | None = None, *, empty: Mapping[str, int] | None = None) -> None:
        """Add calls' tokens, their usage by caller and role, and empty replies by role."""
        self._count = add_tokens(self._count, count)
        if usage:
            self._usage = add_usage(self._usage, usage)
        for role, n in (empty or {}).items():
            self._empty[role] = self._empty.get(role, 0) + n

    def count(self) -> TokenCount:
        """The tokens counted so far."""
        return add_tokens(self._count)

    def usage(self) -> Usage:
        """The calls and tokens counted so far, by caller and role."""
        return add_usage(self._usage)

    def role_usage(self) -> dict[str, RoleUsage]:
        """This meter's own caller's calls and tokens by role (what a site reports)."""
        return add_usage(self._usage).get(self.client_id or SERVER_CALLER, {})

    def replies(self) -> dict[str, ReplyCount]:
        """This meter's own calls and the empty replies among them, by role."""
        return {role: ReplyCount(calls=n["calls"], empty=self._empty.get(role, 0)) for role, n in self.role_usage().items()}


_METERS: ContextVar[tuple[TokenMeter, ...]] = ContextVar("fedtextgrad_token_meters", default=())


@contextmanager
def metering(*, client_id: str | None, isolated: bool = False) -> Iterator[TokenMeter]:
    """Count the usage of the calls made for ``client_id`` (``None``: the server's own calls)
    within this block, including its tasks and worker threads. ``isolated``: count them in this
    meter only, not in the meters already open (whoever opened it reports its counts onward,
    e.g. with :func:`record_reported`)."""
    meter = TokenMeter(client_id)
    token = _METERS.set((*([] if isolated else _METERS.get()), meter))
    try:
        yield meter
    finally:
        _METERS.reset(token)


def record_call_usage(client_id: str | None, role: str, usage: tuple[int, int] | None, *, empty: bool = False) -> None:
    """One finished call's usage (``None``: it reported none) and whether its reply was empty,
    for the meters of ``client_id``."""
    input_tokens, output_tokens = usage or (0, 0)
    count = TokenCount(input=input_tokens, output=output_tokens, calls_without_usage=int(usage is None))
    by_role = {client_id or SERVER_CALLER: {role: RoleUsage(calls=1, **count)}}
    for meter in _METERS.get():
        if meter.client_id == client_id:
            meter.add(count, by_role, empty={role: int(empty)})


def record_reported(count: TokenCount, usage: Usage | None = None) -> None:
    """Tokens (and usage by caller and role) a site reported for work the server asked of
    it, for the server's meters."""
    for meter in _METERS.get():
        if meter.client_id is None:
            meter.add(count, usage)
