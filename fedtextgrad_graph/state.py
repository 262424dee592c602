"""Graph state: what a round needs and nothing more. No private examples, no transcripts."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

__all__ = ["ClientState", "ClientTask", "ClientUpdate", "RoundRecord", "RoundState", "StepRecord"]

StepOutcome = Literal["accepted", "rejected", "malformed"]


def merge_by_key(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for per-round maps: merge by key; ``None`` clears the map for a new round."""
    if right is None:
        return {}
    return {**(left or {}), **right}


class StepRecord(TypedDict):
    """One local TextGrad step of one client."""

    client_id: str
    round: int
    step: int
    batch_size: int
    train_accuracy: float
    updated_accuracy: float | None
    outcome: StepOutcome
    prompt_chars: int
    llm_calls: int


class ClientUpdate(TypedDict):
    """What a client uploads after its local steps: its prompt and metrics."""

    client_id: str
    round: int
    task: str
    prompt: str
    steps: list[StepRecord]
    accepted: int
    rejected: int
    malformed: int
    llm_calls: int


class ClientTask(TypedDict):
    """The payload ``broadcast`` sends to each selected client."""

    client_id: str
    round: int
    global_prompt: str


class ClientState(TypedDict):
    """State of the client-optimizer subgraph. ``batch`` holds example indices, not examples."""

    client_id: str
    round: int
    prompt: str
    step: int
    batch: list[int]
    steps: Annotated[list[StepRecord], operator.add]


class RoundRecord(TypedDict, total=False):
    """One round in the run's history."""

    round: int
    clients: list[str]
    client_prompts: dict[str, str]
    client_metrics: dict[str, dict[str, Any]]
    global_prompt: str
    prompt_chars: int
    prompt_tokens: int
    tokenizer: str
    aggregation: str
    validation_accuracy: float
    validation_correct: int
    validation_total: int
    improved: bool
    models: dict[str, str]
    llm_calls: int


class RoundState(TypedDict, total=False):
    """State of the round graph."""

    run_config: dict[str, Any]
    round: int
    global_prompt: str
    selected_clients: list[str]
    client_updates: Annotated[dict[str, ClientUpdate], merge_by_key]
    round_metrics: Annotated[dict[str, Any], merge_by_key]
    history: Annotated[list[RoundRecord], operator.add]
    best_prompt: str | None
    best_score: float | None
    best_round: int | None
    reference_score: float | None
    baseline_accuracy: float | None
    rounds_without_improvement: int
    rounds_unchanged: int
    stop_reason: str | None
    test_accuracy: float | None
