"""Empty LLM replies: what counts as one, and their counts by role and by who made the calls."""

from __future__ import annotations

from collections.abc import Mapping

from .wire import ReplyCount

__all__ = ["SERVER", "ReplyCounts", "add_replies", "empty_reply_warnings", "is_empty_reply", "only_empty", "replies_since"]

ReplyCounts = dict[str, ReplyCount]
"""Role -> its LLM calls and empty replies."""

SERVER = "server"
"""The key of the server's own calls (aggregator, server-held scoring) among client ids."""


def is_empty_reply(text: str) -> bool:
    """Whether a model's reply says nothing: empty or only whitespace."""
    return not text.strip()


def replies_since(before: Mapping[str, ReplyCount], after: Mapping[str, ReplyCount]) -> ReplyCounts:
    """The calls and empty replies made between two snapshots, by role (roles with calls only)."""
    made: ReplyCounts = {}
    for role, now in after.items():
        was = before.get(role, ReplyCount(calls=0, empty=0))
        if now["calls"] > was["calls"]:
            made[role] = ReplyCount(calls=now["calls"] - was["calls"], empty=now["empty"] - was["empty"])
    return made


def add_replies(*counts: Mapping[str, ReplyCount]) -> ReplyCounts:
    """The sum of several counts, by role."""
    total: ReplyCounts = {}
    for count in counts:
        for role, n in count.items():
            was = total.get(role, ReplyCount(calls=0, empty=0))
            total[role] = ReplyCount(calls=was["calls"] + n["calls"], empty=was["empty"] + n["empty"])
    return total


def only_empty(by_caller: Mapping[str, Mapping[str, ReplyCount]]) -> dict[str, ReplyCounts]:
    """The callers and roles that got at least one empty reply."""
    kept = {who: {role: n for role, n in counts.items() if n["empty"]} for who, counts in by_caller.items()}
    return {who: counts for who, counts in kept.items() if counts}


def empty_reply_warnings(round: int, by_caller: Mapping[str, Mapping[str, ReplyCount]]) -> list[str]:
    """One line per caller and role that got empty replies in ``round``."""
    lines = []
    for who, counts in only_empty(by_caller).items():
        owner = "the server" if who == SERVER else who
        for role, n in counts.items():
            replies = "reply" if n["empty"] == 1 else "replies"
            lines.append(f"round {round}: {owner}'s {role} model returned {n['empty']} empty {replies} (of {n['calls']})")
    return lines
