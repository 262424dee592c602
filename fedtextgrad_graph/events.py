"""The progress events of a run: what ``on_event`` receives and ``events.jsonl`` records.

Every event is a :class:`RunEvent`: its ``kind`` is one of :data:`EventKind`, and its ``data``
has the fields of that kind's ``TypedDict`` in :data:`EVENT_DATA` (``RoundStarted`` for
``round_started``, and so on). Events carry metrics and ids, never examples, answers or keys.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, get_args

from typing_extensions import TypedDict  # pydantic validates it on Python < 3.12

from .server.participation import QuorumPause
from .server.review import ReviewRequest
from .wire import ClientScore, ReplyCount, StepRecord, TokenCount

__all__ = [
    "EVENT_DATA",
    "EVENT_KINDS",
    "Aggregated",
    "ClientDropped",
    "ClientFinished",
    "Evaluated",
    "EventKind",
    "LLMCall",
    "Resumed",
    "Reviewed",
    "RoundFinished",
    "RoundStarted",
    "RunEvent",
    "Screened",
    "SiteConnected",
    "TestFinished",
    "WaitingForSite",
]

EventKind = Literal[
    "resumed",
    "round_started",
    "local_step",
    "client_finished",
    "client_dropped",
    "screened",
    "aggregated",
    "evaluated",
    "reviewed",
    "round_finished",
    "paused",
    "test_finished",
    "llm_call",
    "waiting_for_site",
    "site_connected",
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)


class Resumed(TypedDict):
    """A resumed run continues in ``round``; ``status`` is the run's status before it."""

    round: int
    status: str


class RoundStarted(TypedDict):
    """A round begins with the clients sampled for it."""

    round: int
    clients: list[str]


class ClientFinished(TypedDict):
    """A client uploaded its prompt: how its local steps went (``steps``, one per step)."""

    client_id: str
    round: int
    task: str
    accepted: int
    rejected: int
    malformed: int
    blocked: int
    redacted: int
    unchanged: int
    llm_calls: int
    steps: list[StepRecord]


class ClientDropped(TypedDict):
    """A client gave no update this round, and why."""

    client_id: str
    reason: str


class Screened(TypedDict):
    """The upload screens ran: the uploads left out (client -> reason) and their scores."""

    screened_out: dict[str, str]
    scores: dict[str, dict[str, Any]]


class Aggregated(TypedDict):
    """The uploads were merged into a new global prompt (unchanged if all were screened out);
    ``merge``: the merge's measures (the round record's ``merge``; None if nothing was merged)."""

    prompt_chars: int
    prompt_tokens: int
    aggregation: str
    all_screened_out: bool
    merge: NotRequired[dict[str, Any] | None]


class Evaluated(TypedDict):
    """The new global prompt was scored; ``dropped`` names clients left out of the scoring,
    ``client_validation`` is each client's share when the clients scored it (else empty),
    ``validation_by_task`` each task's."""

    validation_accuracy: float
    dropped: dict[str, str]
    client_validation: dict[str, ClientScore]
    validation_by_task: dict[str, ClientScore]


class Reviewed(TypedDict):
    """A person approved, edited or rejected the merged prompt (``[review] required``)."""

    decision: str
    note: str | None
    candidate_validation_accuracy: float | None
    validation_accuracy: float | None


class RoundFinished(TypedDict):
    """A round ended; ``stop_reason`` is set when it was the last one. ``empty_replies``: the
    callers (client ids, ``server``) and roles that got empty replies, with their counts.
    ``update_success_rate``: accepted / attempted local steps (``None``: none attempted);
    ``llm_tokens``: the round's provider-reported tokens."""

    round: int
    validation_accuracy: float
    improved: bool
    new_best: bool
    stop_reason: str | None
    dropped: dict[str, str]
    empty_replies: dict[str, dict[str, ReplyCount]]
    update_success_rate: float | None
    llm_tokens: TokenCount | None


class TestFinished(TypedDict):
    """The best prompt was scored on the test split."""

    test_accuracy: float


class LLMCall(TypedDict):
    """One finished LLM call's metadata (see :class:`~fedtextgrad_graph.models.LLMCallRecord`)."""

    role: str
    client_id: str | None
    round: int | None
    model: str
    seconds: float
    attempts: int
    ok: bool
    empty: bool
    retry_wait_s: NotRequired[float]
    errors: NotRequired[tuple[str, ...] | list[str]]
    input_tokens: NotRequired[int | None]
    output_tokens: NotRequired[int | None]


class WaitingForSite(TypedDict):
    """Flower: the run waits for this client's site to connect."""

    client_id: str


class SiteConnected(TypedDict):
    """Flower: a site connected and claimed a client id."""

    client_id: str
    node_id: int


EVENT_DATA: dict[EventKind, Any] = {
    "resumed": Resumed,
    "round_started": RoundStarted,
    "local_step": StepRecord,
    "client_finished": ClientFinished,
    "client_dropped": ClientDropped,
    "screened": Screened,
    "aggregated": Aggregated,
    "evaluated": Evaluated,
    "reviewed": Reviewed,
    "round_finished": RoundFinished,
    "paused": QuorumPause | ReviewRequest,
    "test_finished": TestFinished,
    "llm_call": LLMCall,
    "waiting_for_site": WaitingForSite,
    "site_connected": SiteConnected,
}
"""The type of ``RunEvent.data`` for each kind (``paused``: a quorum pause or a review request)."""


@dataclass(frozen=True)
class RunEvent:
    """A progress event of a run.

    Attributes:
        kind: What happened (one of :data:`EventKind`).
        data: Its fields, typed by ``EVENT_DATA[kind]``.
    """

    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One ``events.jsonl`` line: time, process id, ``event`` (the kind) and the data."""
        return json.dumps({"time": time.time(), "pid": os.getpid(), "event": self.kind, **self.data})
