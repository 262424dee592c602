"""Why a finished run stopped before ``max_rounds``, and which setting runs every round."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["budget_note", "early_stop_note"]

_WHY = {
    "prompt_unchanged": (
        "the global prompt did not change for {unchanged_rounds} round(s) in a row",
        "set [convergence] unchanged_rounds = 0",
    ),
    "patience": ("no improvement for {patience} round(s) in a row", "remove [convergence] patience"),
    "target_accuracy": ("validation accuracy reached {target_accuracy}", "remove [convergence] target_accuracy"),
}


def budget_note(payload: Mapping[str, Any]) -> str:
    """For a run stopped by its ``[budget]``: what was spent, and how to go on."""
    budget = payload.get("budget") or {}
    spent = [f"{budget.get('spent_tokens') or 0:,} tokens"]
    if budget.get("spent_usd") is not None:
        spent.append(f"${budget['spent_usd']:.4f}")
    limits = [f"max_tokens = {budget['max_tokens']:,}" for _ in [0] if budget.get("max_tokens")]
    limits += [f"max_usd = {budget['max_usd']:g}" for _ in [0] if budget.get("max_usd")]
    return (
        f"the run stopped at its budget after round {payload['rounds']}: spent {', '.join(spent)} of {', '.join(limits)}; "
        f"to go on (the final test runs when it finishes), raise it: fedtextgrad-graph resume {payload['run_id']} --max-tokens N / --max-usd X"
    )


def early_stop_note(payload: Mapping[str, Any]) -> str | None:
    """One line for a completed run that stopped before its ``max_rounds`` (None otherwise)."""
    rules: Mapping[str, Any] = ((payload.get("config") or {}).get("convergence")) or {}
    max_rounds = rules.get("max_rounds")
    why = _WHY.get(str(payload.get("stop_reason")))
    if why is None or max_rounds is None or payload.get("rounds", 0) >= max_rounds:
        return None
    reason, setting = why
    values = {"unchanged_rounds": 2, **{k: v for k, v in rules.items() if v is not None}}
    return (
        f"stopped after {payload['rounds']} of max_rounds = {max_rounds} round(s): {reason.format(**values)}; "
        f"to run every round, {setting}"
    )
