"""One round's measured merge: the first candidate, repair tries, the best candidate or the fallback.

The round graph keeps a :data:`MergeProgress` in its state between steps, so each repair try is its
own checkpointed step. The targets (``[aggregation]``): coverage >= ``min_coverage``, length ratio
<= ``max_length_ratio``, UID score <= the deduplicated concatenation's. Only a strategy with
``enforces_targets`` (``uid``) is repaired; the others are measured the same way.

The **best candidate** is the one that reaches the coverage target, then meets the most targets,
then has the highest coverage, then the lowest UID score, then came first. When no candidate
reaches the coverage target, the merge falls back to the deduplicated concatenation (the unique
units in first-seen order).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..prompts import (
    PROMPT_ITEM,
    REPAIR_DENSE,
    REPAIR_LENGTH,
    REPAIR_MISSING,
    REPAIR_SPARSE,
    REPAIR_TEMPLATE,
)
from ..text import strip_format
from .base import Aggregator
from .uid import Candidate, MergeMeter, Unit, split_units, surprisal_profile, unique_units

__all__ = [
    "MergeProgress",
    "MergeTargets",
    "best_candidate",
    "coverage",
    "finish_merge",
    "needs_repair",
    "repair_once",
    "repair_request",
    "start_merge",
    "targets_of",
]

MergeProgress: TypeAlias = dict[str, Any]
"""A round's merge so far: ``strategy``, ``enforce``, ``units`` (``[text, [client ids]]``),
``client_bodies``, ``format_instruction``, ``concat`` and ``candidates`` (measured), ``estimator``, ``unit``."""


@dataclass(frozen=True)
class MergeTargets:
    """What a ``uid`` merge must reach (``max_uid_score``: the deduplicated concatenation's)."""

    min_coverage: float
    max_length_ratio: float
    max_uid_score: float

    def missed(self, candidate: Candidate, units: int) -> list[str]:
        """The targets ``candidate`` misses: ``coverage``, ``length``, ``uid``."""
        missed = []
        if coverage(candidate, units) < self.min_coverage:
            missed.append("coverage")
        if candidate["length_ratio"] > self.max_length_ratio:
            missed.append("length")
        if candidate["uid_score"] > self.max_uid_score:
            missed.append("uid")
        return missed


def coverage(candidate: Candidate, units: int) -> float:
    """The share of the ``units`` unique units that ``candidate`` covers (1 when there are none)."""
    return candidate["covered"] / units if units else 1.0


def best_candidate(candidates: list[Candidate], targets: MergeTargets, units: int) -> int:
    """The index of the best candidate (see module docs)."""

    def rank(i: int) -> tuple[bool, int, float, float, int]:
        c = candidates[i]
        missed = targets.missed(c, units)
        return ("coverage" not in missed, -len(missed), coverage(c, units), -c["uid_score"], -i)

    return max(range(len(candidates)), key=rank)


def _density_outliers(candidate: Candidate) -> tuple[list[str], list[str]]:
    """Sentences more than one standard deviation above (dense) or below (sparse) the mean surprisal."""
    values: list[float] = candidate["surprisal"]
    if len(values) < 2:
        return [], []
    mean, std = statistics.fmean(values), statistics.pstdev(values)
    sentences = split_units(candidate["body"])
    dense = [s for s, v in zip(sentences, values, strict=False) if v > mean + std]
    sparse = [s for s, v in zip(sentences, values, strict=False) if v < mean - std]
    return dense, sparse


def _listing(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def repair_request(progress: MergeProgress, targets: MergeTargets) -> str:
    """The repair prompt for the latest candidate: what it misses and which sentences to rebalance."""
    candidate = progress["candidates"][-1]
    missed = targets.missed(candidate, len(progress["units"]))
    problems: list[str] = []
    if candidate["missing"]:
        problems.append(REPAIR_MISSING.format(instructions=_listing(candidate["missing"])))
    if "uid" in missed:
        dense, sparse = _density_outliers(candidate)
        if dense:
            problems.append(REPAIR_DENSE.format(sentences=_listing(dense)))
        if sparse:
            problems.append(REPAIR_SPARSE.format(sentences=_listing(sparse)))
    if "length" in missed:
        problems.append(REPAIR_LENGTH.format(ratio=candidate["length_ratio"], max_ratio=targets.max_length_ratio))
    items = "\n".join(PROMPT_ITEM.format(client_id=cid, prompt=body) for cid, body in progress["client_bodies"].items())
    return REPAIR_TEMPLATE.format(prompts=items, candidate=candidate["body"], problems="\n\n".join(problems))


def _units(progress: MergeProgress) -> list[Unit]:
    return [Unit(text, tuple(clients)) for text, clients in progress["units"]]


def targets_of(progress: MergeProgress, *, min_coverage: float, max_length_ratio: float) -> MergeTargets:
    """The round's targets (the UID target is the deduplicated concatenation's score)."""
    return MergeTargets(min_coverage, max_length_ratio, progress["concat"]["uid_score"])


async def start_merge(
    aggregator: Aggregator, meter: MergeMeter, prompts: Mapping[str, str], *, format_instruction: str, enforce: bool
) -> MergeProgress:
    """Merge ``prompts`` once (candidate 0) and measure it and the deduplicated concatenation."""
    bodies = aggregator.bodies(prompts, format_instruction=format_instruction)
    units = unique_units(bodies)
    merged = await aggregator.merge_bodies(bodies, format_instruction=format_instruction)
    client_bodies = list(bodies.values())
    concat = await meter.measure(" ".join(u.text for u in units), units, client_bodies, complete=True)
    first = await meter.measure(merged, units, client_bodies)
    return {
        "strategy": aggregator.name,
        "enforce": enforce,
        "format_instruction": format_instruction,
        "units": [[u.text, list(u.clients)] for u in units],
        "client_bodies": bodies,
        "concat": concat,
        "candidates": [first],
        "estimator": meter.estimator.name,
        "unit": meter.estimator.unit,
    }


def needs_repair(progress: MergeProgress, targets: MergeTargets, repair_tries: int) -> bool:
    """Whether to ask for another repair: targets missed, tries left, and the last try was new."""
    candidates = progress["candidates"]
    if not progress["enforce"] or len(progress["client_bodies"]) < 2 or len(candidates) > repair_tries:
        return False
    latest = candidates[-1]
    repeated = any(c["body"] == latest["body"] for c in candidates[:-1])
    return not repeated and bool(targets.missed(latest, len(progress["units"])))


async def repair_once(aggregator: Aggregator, meter: MergeMeter, progress: MergeProgress, targets: MergeTargets) -> MergeProgress:
    """Ask the aggregator once to repair the latest candidate, and measure the reply."""
    reply = await aggregator.revise(repair_request(progress, targets))
    body = strip_format(reply, progress["format_instruction"])
    candidate = await meter.measure(body, _units(progress), list(progress["client_bodies"].values()))
    return {**progress, "candidates": [*progress["candidates"], candidate], "estimator": meter.estimator.name}


def finish_merge(progress: MergeProgress, targets: MergeTargets) -> tuple[str, dict[str, Any]]:
    """The merged body and the round record's ``merge``: the best candidate, or the fallback."""
    units = len(progress["units"])
    candidates: list[Candidate] = progress["candidates"]
    chosen = candidates[best_candidate(candidates, targets, units)] if progress["enforce"] else candidates[0]
    fallback = progress["enforce"] and coverage(chosen, units) < targets.min_coverage
    if fallback:
        chosen = progress["concat"]
    values: list[float] = chosen["surprisal"]
    record = {
        "strategy": progress["strategy"],
        "units": units,
        "covered": chosen["covered"],
        "coverage": round(coverage(chosen, units), 4),
        "missing": list(chosen["missing"]),
        "estimator": progress["estimator"],
        "surprisal": surprisal_profile(values, progress["unit"]),
        "uid_score": chosen["uid_score"],
        "concat_uid_score": progress["concat"]["uid_score"],
        "length_ratio": chosen["length_ratio"],
        "repairs": len(candidates) - 1,
        "fallback": fallback,
        "met_targets": not targets.missed(chosen, units) if progress["enforce"] else None,
    }
    return chosen["body"], record
