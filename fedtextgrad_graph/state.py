"""Graph state: what a round needs and nothing more. No private examples, no transcripts."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from .wire import ClientScore, ClientUpdate, ReplyCount, TokenCount, Usage

__all__ = ["RoundRecord", "RoundState", "merge_by_key"]


def merge_by_key(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for per-round maps: merge by key; ``None`` clears the map for a new round."""
    if right is None:
        return {}
    return {**(left or {}), **right}


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
    those two scorings."""

    run_config: dict[str, Any]
    round: int
    global_prompt: str
    selected_clients: list[str]
    client_updates: Annotated[dict[str, ClientUpdate], merge_by_key]
    client_failures: Annotated[dict[str, str], merge_by_key]
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
