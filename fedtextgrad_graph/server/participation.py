"""Partial participation: why a client was left out of a round, and the quorum pause."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict  # pydantic validates it on Python < 3.12

from ..transport import ClientUnavailable

__all__ = ["QuorumPause", "failure_reason", "quorum_message"]


class QuorumPause(TypedDict):
    """The value of the interrupt that pauses a round with too few client updates."""

    kind: str
    round: int
    arrived: list[str]
    required: int
    dropped: dict[str, str]


def failure_reason(exc: BaseException, deadline_s: float | None) -> str:
    """One line saying why a client's request failed (never a traceback: it may hold data)."""
    if isinstance(exc, TimeoutError) and deadline_s is not None:
        return f"missed the deadline ({deadline_s:g} s)"
    if isinstance(exc, ClientUnavailable):
        return f"unavailable: {exc}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def quorum_message(pause: dict[str, Any]) -> str:
    """The pause as a sentence for the command line and logs."""
    dropped = "; ".join(f"{cid}: {why}" for cid, why in pause["dropped"].items())
    return (
        f"round {pause['round']} paused: {len(pause['arrived'])} client update(s) arrived, "
        f"the quorum needs {pause['required']} (dropped: {dropped})"
    )
