"""Human review of a round's merged prompt: the pause, the reviewer's decision, and which
prompt counts as approved while a round awaits review.

The round graph's ``review`` node interrupts with a :class:`ReviewRequest`; the run continues
when it is resumed with ``Command(resume=ReviewDecision(...))`` (``fedtextgrad-graph review``,
:func:`fedtextgrad_graph.runs.stream_run` with ``review=``, or LangGraph Studio).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired

from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic validates it on Python < 3.12

from ..text import count_tokens
from .evaluation import validation_accuracy
from .runtime import FederationRuntime

__all__ = [
    "REVIEW_DECISIONS",
    "ReviewDecision",
    "ReviewRequest",
    "approved_prompt",
    "parse_decision",
    "review_message",
    "review_round",
]

REVIEW_DECISIONS = ("approve", "edit", "reject")
Decision = Literal["approve", "edit", "reject"]


class ReviewRequest(TypedDict):
    """The value of the interrupt that pauses a round for review.

    ``candidate`` is the merged prompt, ``current`` the global prompt before the round;
    ``current_score`` is the current prompt's validation accuracy (the previous round's, or the
    baseline), ``reference_score`` the accuracy a round must beat to count as an improvement.
    ``error`` says why the previous answer was refused (an invalid resume value), ``attempt``
    how many times the round has asked (from 2 on).
    """

    kind: Literal["review"]
    round: int
    candidate: str
    current: str
    candidate_score: float
    current_score: float | None
    reference_score: float | None
    aggregation: str
    error: NotRequired[str]
    attempt: NotRequired[int]


class ReviewDecision(TypedDict):
    """A reviewer's answer: ``approve`` the candidate, ``edit`` (``prompt`` becomes the global
    prompt) or ``reject`` (keep the current global prompt), with an optional ``note``."""

    decision: Decision
    prompt: NotRequired[str]
    note: NotRequired[str]


def parse_decision(value: Any) -> ReviewDecision:
    """A resume value as a :class:`ReviewDecision`.

    Raises:
        ValueError: One line saying what is wrong with ``value``.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"a review decision is an object like {{'decision': 'approve'}}, not {value!r:.80}")  # noqa: TRY004 - one error type
    unknown = sorted(set(value) - {"decision", "prompt", "note"})
    if unknown:
        raise ValueError(f"a review decision has the keys decision, prompt and note, not {', '.join(map(str, unknown))}")
    decision = value.get("decision")
    if decision not in REVIEW_DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(REVIEW_DECISIONS)}, not {decision!r:.80}")
    prompt, note = value.get("prompt"), value.get("note")
    if decision == "edit" and (not isinstance(prompt, str) or not prompt.strip()):
        raise ValueError("an 'edit' decision needs a non-empty prompt")
    if decision != "edit" and prompt is not None:
        raise ValueError(f"only an 'edit' decision takes a prompt, not {decision!r}")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"note must be text, not {type(note).__name__}")
    parsed = ReviewDecision(decision=decision)
    if decision == "edit" and isinstance(prompt, str):
        parsed["prompt"] = prompt.strip()
    if note:
        parsed["note"] = note
    return parsed


def review_message(request: Mapping[str, Any]) -> str:
    """The pause as a sentence for the command line and logs."""
    current = request.get("current_score")
    against = "" if current is None else f" (current prompt: {current:.3f})"
    return f"round {request['round']} awaits review: the merged prompt scored {request['candidate_score']:.3f}{against}"


def approved_prompt(state: Mapping[str, Any]) -> str | None:
    """The global prompt a reviewer has let through: while a round's merged prompt has not
    passed review (its record is not in the history yet), the global prompt before that round."""
    history = state.get("history") or []
    finished = bool(history) and history[-1]["round"] == state.get("round")
    metrics = state.get("round_metrics") or {}
    if not finished and "previous_prompt" in metrics:
        previous: str = metrics["previous_prompt"]
        return previous
    return state.get("global_prompt")


_VALIDATION = ("validation_accuracy", "validation_correct", "validation_total", "evaluation_dropped")


def _ask(request: ReviewRequest) -> ReviewDecision:
    """Pause the run with ``request``; ask again (saying why) while the answer is invalid."""
    answer, attempt = interrupt(request), 1
    while True:
        try:
            return parse_decision(answer)
        except ValueError as exc:
            attempt += 1
            answer = interrupt(ReviewRequest(**request, error=str(exc), attempt=attempt))


async def review_round(runtime: FederationRuntime, state: Mapping[str, Any], *, run_id: str) -> dict[str, Any]:
    """The ``review`` node: pause for a decision on the merged prompt, then apply it.

    ``edit`` scores the edited prompt on validation, so the round's numbers describe the prompt
    kept; ``reject`` keeps the current prompt with the numbers it had (scoring it only if it
    has none).
    """
    metrics = state["round_metrics"]
    history = state.get("history") or []
    request = ReviewRequest(
        kind="review",
        round=state["round"],
        candidate=state["global_prompt"],
        current=metrics["previous_prompt"],
        candidate_score=metrics["validation_accuracy"],
        current_score=history[-1]["validation_accuracy"] if history else state.get("baseline_accuracy"),
        reference_score=state.get("reference_score"),
        aggregation=metrics["aggregation"],
    )
    decision = _ask(request)
    record: dict[str, Any] = {
        "decision": decision["decision"],
        "note": decision.get("note"),
        "candidate_validation_accuracy": request["candidate_score"],
    }
    if decision["decision"] == "approve":
        return {"round_metrics": {"review": record}}
    record["candidate_prompt"] = request["candidate"]
    kept = decision.get("prompt", request["current"])
    tokenizer = runtime.config.aggregation.tokenizer
    update: dict[str, Any] = {"review": record, "prompt_chars": len(kept), "prompt_tokens": count_tokens(kept, tokenizer)}
    if decision["decision"] == "reject" and history:
        update.update({key: history[-1][key] for key in _VALIDATION})
        update["client_validation"] = history[-1].get("client_validation", {})
        update["validation_by_task"] = history[-1].get("validation_by_task", {})
    else:
        score = await validation_accuracy(runtime, kept, run_id=run_id, round=state["round"])
        update.update(
            validation_accuracy=score.accuracy,
            validation_correct=score.correct,
            validation_total=score.total,
            evaluation_dropped=score.dropped,
            evaluation_llm_calls=metrics["evaluation_llm_calls"] + score.llm_calls,
            client_validation=score.by_client,
            validation_by_task=score.by_task,
            review_replies=score.replies,
            evaluation_models=runtime.models_in_use(["task", "judge"]),
            evaluation_client_models=score.client_models,
        )
    return {"global_prompt": kept, "round_metrics": update}
