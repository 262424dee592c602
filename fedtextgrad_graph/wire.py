"""What crosses between the server and a site: requests and replies of prompts and counts.

Never examples, answers, model replies or keys: a site's private data stays on the site.
The same types serve the in-process transport and Flower (as JSON in a message).
"""

from __future__ import annotations

from typing import (
    Literal,
    NotRequired,
    TypeAlias,  # pydantic validates these (Flower replies) on Python < 3.12
)

from typing_extensions import TypedDict

__all__ = [
    "ClientScore",
    "ClientTask",
    "ClientUpdate",
    "EvaluateRequest",
    "EvaluateResult",
    "ExampleSample",
    "ReplyCount",
    "RoleUsage",
    "StepOutcome",
    "StepRecord",
    "TokenCount",
    "TrainRequest",
    "Usage",
]

StepOutcome = Literal["accepted", "rejected", "malformed", "blocked", "unchanged"]
"""What a local step did with the optimizer's new prompt. ``unchanged``: the new prompt equals
the one it was to replace (ignoring differences in whitespace), so the step kept it as it was
without re-scoring it."""


class ReplyCount(TypedDict):
    """One role's LLM calls and how many of them returned an empty (or whitespace-only) reply,
    after the gateway's retry of an empty reply."""

    calls: int
    empty: int


class TokenCount(TypedDict):
    """Tokens some LLM calls used, as their provider reported them (``usage_metadata`` of each
    reply): ``input`` (prompt) and ``output`` (completion) tokens, and the calls whose reply
    reported no usage (a provider or app that does not say, or a call that failed), which are
    counted here and never estimated."""

    input: int
    output: int
    calls_without_usage: int


class RoleUsage(TypedDict):
    """One role's LLM calls and the tokens their providers reported (see :class:`TokenCount`)."""

    calls: int
    input: int
    output: int
    calls_without_usage: int


Usage: TypeAlias = dict[str, dict[str, RoleUsage]]
"""LLM usage by caller (a client id, or ``"server"``) and role."""


class ClientTask(TypedDict):
    """The payload ``broadcast`` sends to each selected client."""

    client_id: str
    round: int
    global_prompt: str


class TrainRequest(TypedDict):
    """A round's local training, as a site receives it: the global prompt and the run's
    local-training settings."""

    run_id: str
    client_id: str
    round: int
    global_prompt: str
    task: str
    seed: int
    local_steps: int
    batch_size: int
    proximal: str
    format_instruction: str


class StepRecord(TypedDict):
    """One local TextGrad step of one client. ``guard_caught``: spans of the new prompt the
    upload guard caught, by kind (never the text); ``redacted``: they were removed and the
    step went on (``blocked`` outcome: the previous prompt was kept). ``empty_replies``: the
    step's LLM calls and empty replies by role; ``llm_tokens``: the tokens they used (both
    absent from older sites)."""

    client_id: str
    round: int
    step: int
    batch_size: int
    train_accuracy: float
    updated_accuracy: float | None
    outcome: StepOutcome
    prompt_chars: int
    llm_calls: int
    guard_caught: dict[str, int]
    redacted: bool
    empty_replies: NotRequired[dict[str, ReplyCount]]
    llm_tokens: NotRequired[TokenCount]
    llm_usage: NotRequired[dict[str, RoleUsage]]


class ClientUpdate(TypedDict):
    """What a client uploads after its local steps: its prompt, metrics and model names.
    ``blocked``/``redacted``: its steps whose new prompt the upload guard refused or redacted;
    ``unchanged``: its steps whose new prompt was the old one; ``empty_replies``: its LLM calls
    and empty replies by role. Sites older than the last two fields send neither (read as 0).
    ``llm_tokens``: the tokens its calls used (absent from older sites: their calls count as
    calls without usage)."""

    client_id: str
    round: int
    task: str
    prompt: str
    steps: list[StepRecord]
    accepted: int
    rejected: int
    malformed: int
    llm_calls: int
    models: dict[str, str]
    blocked: int
    redacted: int
    unchanged: NotRequired[int]
    empty_replies: NotRequired[dict[str, ReplyCount]]
    llm_tokens: NotRequired[TokenCount]
    llm_usage: NotRequired[dict[str, RoleUsage]]


class ClientScore(TypedDict):
    """One client's share of a federated score, as the server records it (``accuracy`` is
    ``None`` for a client without such examples)."""

    correct: int
    total: int
    accuracy: float | None


class ExampleSample(TypedDict):
    """At most ``size`` examples of a split, drawn by a shuffle seeded with ``seed``."""

    size: int
    seed: str


class EvaluateRequest(TypedDict):
    """Score ``prompt`` on a client's own ``split`` (or a ``sample`` of it); ``round`` is
    ``None`` for the final test."""

    run_id: str
    client_id: str
    round: int | None
    prompt: str
    split: Literal["validation", "test"]
    sample: NotRequired[ExampleSample]


class EvaluateResult(TypedDict):
    """Only the counts come back (and the LLM calls the scoring took, with the empty replies
    among them by role, the tokens they used and the models, by role, they were made with; the
    last three absent from older sites)."""

    client_id: str
    correct: int
    total: int
    llm_calls: int
    empty_replies: NotRequired[dict[str, ReplyCount]]
    llm_tokens: NotRequired[TokenCount]
    llm_usage: NotRequired[dict[str, RoleUsage]]
    models: NotRequired[dict[str, str]]
