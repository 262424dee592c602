"""Graph state: what a round needs and nothing more. No private examples, no transcripts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, TypedDict, get_type_hints

from langgraph.channels.delta import DeltaChannel

from .wire import ClientScore, ClientUpdate, ReplyCount, TokenCount, Usage

__all__ = ["RoundRecord", "RoundState", "append_records", "delta_channels", "merge_all", "merge_by_key", "merge_writes_by_key"]


def merge_by_key(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for per-round maps: merge by key; ``None`` clears the map for a new round."""
    if right is None:
        return {}
    return {**(left or {}), **right}


def append_records(history: list[RoundRecord], writes: Sequence[list[RoundRecord]]) -> list[RoundRecord]:
    """Reducer of ``history``: the records of every write, appended in order.

    Batching-invariant, as ``DeltaChannel`` requires: replaying two batches one after the
    other gives the same list as replaying them as one."""
    return [*history, *(record for records in writes for record in records)]


def merge_all(left: dict[str, Any] | None, updates: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    """:func:`merge_by_key` of ``left`` and each update in turn, copying ``left`` once (not
    once per update: a round's thousand client uploads would copy the map a thousand times)."""
    merged = dict(left or {})
    for update in updates:
        if update is None:
            merged = {}
        else:
            merged.update(update)
    return merged


def merge_writes_by_key(current: dict[str, Any], writes: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """``DeltaChannel`` reducer of the per-round maps: ``merge_by_key`` folded over the
    writes, in one pass (:func:`merge_all`)."""
    return merge_all(current, writes)


class RoundRecord(TypedDict, total=False):
    """One round in the run's history. ``dropped`` names the selected clients whose update
    did not arrive, with the reason; ``evaluation_dropped`` those left out of federated scoring;
    ``screened_out`` the uploads the screens left out of aggregation, with the reason (and
    ``all_screened_out`` says the global prompt stayed as it was because none was kept);
    ``review`` (with ``[review] required``) the reviewer's decision and note.
    ``client_validation``: with federated evaluation, each scoring client's own counts;
    ``empty_replies``: the callers (client ids, ``"server"``) and roles whose model returned
    empty replies this round, with their calls.
    ``validation_by_task``: the validation counts of each task (server-held or federated);
    ``update_success_rate``: accepted / attempted local steps of the clients that uploaded
    (``None`` when none was attempted); ``llm_tokens``: the provider-reported tokens of the
    round's calls (the clients' local training and every server step, with the clients'
    scoring), and the calls that reported none; ``merge``: what the merge kept and how evenly it
    spreads information (coverage, missing instructions, surprisal profile, UID score, length
    ratio, repairs, fallback: see aggregation/repair.py ``finish_merge``); ``llm_usage``: the
    round's calls and tokens by caller (client id, ``"server"``) and role; ``cost_usd``: their
    cost under ``[pricing]`` (``None`` when a model used has no price)."""

    round: int
    clients: list[str]
    client_prompts: dict[str, str]
    client_metrics: dict[str, dict[str, Any]]
    dropped: dict[str, str]
    global_prompt: str
    prompt_chars: int
    prompt_tokens: int
    tokenizer: str
    aggregation: str
    validation_accuracy: float
    validation_correct: int
    validation_total: int
    evaluation_dropped: dict[str, str]
    improved: bool
    models: dict[str, str]
    llm_calls: int
    screened_out: dict[str, str]
    screen_scores: dict[str, dict[str, Any]]
    screen_llm_calls: int
    all_screened_out: bool
    review: dict[str, Any]
    client_validation: dict[str, ClientScore]
    empty_replies: dict[str, dict[str, ReplyCount]]
    validation_by_task: dict[str, ClientScore]
    update_success_rate: float | None
    llm_tokens: TokenCount
    merge: dict[str, Any]
    llm_usage: Usage
    cost_usd: float | None


class RoundState(TypedDict, total=False):
    """State of the round graph. ``baseline_by_task``/``test_by_task``: the initial prompt's
    validation and the best prompt's test counts per task; ``baseline_llm_tokens`` and
    ``test_llm_tokens``: the tokens of those two scorings (outside every round), and
    ``baseline_llm_calls``/``test_llm_calls`` their LLM calls, ``baseline_llm_usage``/
    ``test_llm_usage`` by caller and role. ``spent_tokens``/``spent_usd``: the running spend the
    ``[budget]`` is checked against (the baseline and every finished round; ``spent_usd`` is
    ``None`` once a call was not priced); ``baseline_cost_usd``/``test_cost_usd``: the cost of
    those two scorings.

    ``history`` and the per-round maps (``client_updates``, ``client_failures``,
    ``round_metrics``) are ``DeltaChannel``s: a checkpoint stores only what a step wrote (its
    pending writes), not the whole list or map again, so checkpoint bytes per round stay flat
    however many rounds ran; reading the state replays the ancestors' writes."""

    run_config: dict[str, Any]
    round: int
    global_prompt: str
    selected_clients: list[str]
    client_updates: Annotated[dict[str, ClientUpdate], DeltaChannel(merge_writes_by_key, dict)]
    client_failures: Annotated[dict[str, str], DeltaChannel(merge_writes_by_key, dict)]
    round_metrics: Annotated[dict[str, Any], DeltaChannel(merge_writes_by_key, dict)]
    history: Annotated[list[RoundRecord], DeltaChannel(append_records, list)]
    best_prompt: str | None
    best_score: float | None
    best_round: int | None
    reference_score: float | None
    baseline_accuracy: float | None
    rounds_without_improvement: int
    rounds_unchanged: int
    stop_reason: str | None
    test_accuracy: float | None
    client_test: dict[str, ClientScore] | None
    baseline_by_task: dict[str, ClientScore] | None
    test_by_task: dict[str, ClientScore] | None
    baseline_llm_tokens: TokenCount | None
    test_llm_tokens: TokenCount | None
    baseline_llm_calls: int | None
    test_llm_calls: int | None
    baseline_llm_usage: Usage | None
    test_llm_usage: Usage | None
    spent_tokens: int
    spent_usd: float | None
    baseline_cost_usd: float | None
    test_cost_usd: float | None


def delta_channels() -> dict[str, DeltaChannel[Any]]:
    """The ``DeltaChannel``s of ``RoundState`` by name, as declared: for reading a checkpoint
    without building the graph (see ``checkpoint.delta.replay_delta_channels``)."""
    hints = get_type_hints(RoundState, include_extras=True)
    return {
        name: item
        for name, hint in hints.items()
        for item in getattr(hint, "__metadata__", ())
        if isinstance(item, DeltaChannel)
    }
