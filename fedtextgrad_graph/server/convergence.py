"""When to stop: max rounds, patience/min-delta, a target accuracy, or an unchanged prompt."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConvergenceConfig

__all__ = ["ConvergenceDecision", "decide"]


@dataclass(frozen=True)
class ConvergenceDecision:
    """The verdict after a round: whether it improved, the new best, and why to stop (if so)."""

    improved: bool
    new_best: bool
    rounds_without_improvement: int
    rounds_unchanged: int
    stop_reason: str | None


def decide(
    rules: ConvergenceConfig,
    *,
    round: int,
    accuracy: float,
    best_score: float | None,
    reference_score: float | None,
    rounds_without_improvement: int,
    rounds_unchanged: int = 0,
    prompt: str,
    previous_prompt: str,
    eligible: bool = True,
) -> ConvergenceDecision:
    """Apply the stop rules to a finished round.

    A round *improves* when its accuracy beats ``reference_score`` (the accuracy of the last
    improving round) by more than ``min_delta``; ``patience`` counts rounds in a row that did
    not. The best prompt is the one with the highest accuracy (the first one on ties), even
    when its gain was below ``min_delta``. ``unchanged_rounds`` counts rounds in a row whose
    aggregated prompt equals the one before (0 or None: no such rule). A round that is not ``eligible`` (its merge was
    rejected in review) never improves.
    """
    improved = eligible and (reference_score is None or accuracy - reference_score > rules.min_delta)
    new_best = best_score is None or accuracy > best_score
    stale = 0 if improved else rounds_without_improvement + 1
    unchanged = rounds_unchanged + 1 if prompt == previous_prompt else 0
    reason = None
    if rules.target_accuracy is not None and accuracy >= rules.target_accuracy:
        reason = "target_accuracy"
    elif rules.unchanged_rounds and unchanged >= rules.unchanged_rounds:
        reason = "prompt_unchanged"
    elif rules.patience is not None and stale >= rules.patience:
        reason = "patience"
    elif round >= rules.max_rounds:
        reason = "max_rounds"
    return ConvergenceDecision(improved, new_best, stale, unchanged, reason)
