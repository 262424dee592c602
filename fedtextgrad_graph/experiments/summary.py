"""``comparison.json``: the arms of a comparison side by side, built from their runs' results
payloads (:func:`fedtextgrad_graph.runs.results_payload`, the content of ``results.json``).

Keys a run made by an older version lacks (``test_by_task``, ``llm_tokens``, a round's
``merge`` or ``validation_by_task``) read as missing: their figures are ``null``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from ..text import count_tokens

__all__ = ["Spread", "build_comparison", "spread"]

TOKEN_KINDS = ("input", "output", "calls_without_usage")
MERGE_MEASURES = ("coverage", "uid_score", "length_ratio")


class Spread(TypedDict):
    """One figure over seeds: ``per_seed`` in seed order (``null`` where a run lacks it); mean,
    sample standard deviation (n - 1; ``null`` with fewer than two values), min and max of the
    values present (``null`` when none is)."""

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    per_seed: list[float | None]


def spread(values: Iterable[float | None]) -> Spread:
    """:class:`Spread` of ``values`` (one per seed)."""
    per_seed = list(values)
    present = [float(v) for v in per_seed if v is not None]
    return Spread(
        mean=statistics.fmean(present) if present else None,
        std=statistics.stdev(present) if len(present) > 1 else None,
        min=min(present) if present else None,
        max=max(present) if present else None,
        per_seed=per_seed,
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _accuracy(counts: Any) -> float | None:
    return counts.get("accuracy") if isinstance(counts, Mapping) else None


def _tested_prompt(payload: Mapping[str, Any]) -> str | None:
    """The prompt the run's test scored: its best prompt (else its latest)."""
    prompt = payload.get("best_prompt") or payload.get("latest_prompt")
    return prompt if isinstance(prompt, str) else None


def _tokenizer(payload: Mapping[str, Any]) -> str:
    return str(((payload.get("config") or {}).get("aggregation") or {}).get("tokenizer", "wordpiece"))


def _merges(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r["merge"] for r in payload.get("history", []) if isinstance(r.get("merge"), Mapping)]


def _run_tokens(payload: Mapping[str, Any], kind: str) -> float | None:
    tokens = payload.get("llm_tokens")
    return tokens.get(kind) if isinstance(tokens, Mapping) else None


def _by_round(payloads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per round: validation accuracy (overall and per task), prompt size and merge measures,
    each the mean over the seeds whose run reached that round (``seeds``)."""
    rounds = max((len(p.get("history", [])) for p in payloads), default=0)
    rows = []
    for i in range(rounds):
        records = [p["history"][i] for p in payloads if len(p.get("history", [])) > i]
        tasks = sorted({t for r in records for t in (r.get("validation_by_task") or {})})
        merges = [r["merge"] for r in records if isinstance(r.get("merge"), Mapping)]
        rows.append(
            {
                "round": records[0].get("round", i + 1),
                "seeds": len(records),
                "validation_accuracy": _mean(r.get("validation_accuracy") for r in records),
                "validation_by_task": {
                    t: _mean(_accuracy((r.get("validation_by_task") or {}).get(t)) for r in records) for t in tasks
                },
                "prompt_chars": _mean(r.get("prompt_chars") for r in records),
                "prompt_tokens": _mean(r.get("prompt_tokens") for r in records),
                "llm_calls": _mean(r.get("llm_calls") for r in records),
                "update_success_rate": _mean(r.get("update_success_rate") for r in records),
                **{m: _mean(merge.get(m) for merge in merges) for m in MERGE_MEASURES},
            }
        )
    return rows


def _arm(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    tasks = sorted({t for p in payloads for t in (p.get("test_by_task") or {})})
    prompts = [_tested_prompt(p) for p in payloads]
    merges = [_merges(p) for p in payloads]
    return {
        "runs": [
            {
                "seed": ((p.get("config") or {}).get("run") or {}).get("seed"),
                "run_id": p.get("run_id"),
                "status": p.get("status"),
                "rounds": p.get("rounds"),
                "stop_reason": p.get("stop_reason"),
                "simulated": p.get("simulated"),
            }
            for p in payloads
        ],
        "test_accuracy": spread(p.get("test_accuracy") for p in payloads),
        "test_by_task": {t: spread(_accuracy((p.get("test_by_task") or {}).get(t)) for p in payloads) for t in tasks},
        "baseline_validation_accuracy": spread(p.get("baseline_validation_accuracy") for p in payloads),
        "best_validation_accuracy": spread(p.get("best_validation_accuracy") for p in payloads),
        "rounds": spread(p.get("rounds") for p in payloads),
        "llm_calls": spread(p.get("llm_calls") for p in payloads),
        "llm_tokens": {kind: spread(_run_tokens(p, kind) for p in payloads) for kind in TOKEN_KINDS},
        "prompt_chars": spread(None if text is None else len(text) for text in prompts),
        "prompt_tokens": spread(
            None if text is None else count_tokens(text, _tokenizer(p)) for text, p in zip(prompts, payloads, strict=True)
        ),
        **{m: spread(_mean(merge.get(m) for merge in run) for run in merges) for m in MERGE_MEASURES},
        "repairs": spread(sum(merge.get("repairs", 0) for merge in run) if run else None for run in merges),
        "update_success_rate": spread(_mean(r.get("update_success_rate") for r in p.get("history", [])) for p in payloads),
        "by_round": _by_round(payloads),
    }


def build_comparison(comparison_id: str, arms: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """The content of ``comparison.json``: for each arm (in the order given), its runs (one per
    seed, in seed order) and, as :class:`Spread` over seeds: test accuracy overall and per task,
    baseline and best validation accuracy, rounds, LLM calls and provider-reported tokens (run
    totals: every round, the baseline and the final test), the tested prompt's size (chars, tokens), the merge measures (each run's mean
    over its rounds: coverage, UID score, length ratio; repairs summed), and the update success
    rate (each run's mean over rounds); ``by_round``: the per-round means over seeds."""
    runs = [p for payloads in arms.values() for p in payloads]
    results = {name: _arm(payloads) for name, payloads in arms.items()}
    return {
        "comparison_id": comparison_id,
        "arms": list(arms),
        "seeds": sorted({r["seed"] for arm in results.values() for r in arm["runs"] if r["seed"] is not None}),
        "complete": all(p.get("status") == "completed" for p in runs),
        "simulated": any(p.get("simulated") for p in runs),
        "results": results,
    }
