"""Compare arms (the centralized baseline, FedTextGrad with each strategy) over seeds, on the
same splits and models. Each arm and seed is an ordinary run whose id is derived from the
comparison id, the arm and the seed, so running a comparison again resumes its unfinished runs
and skips its finished ones."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from ..config import FedTextGradConfig
from ..events import RunEvent
from ..run_ids import check_run_id
from ..runs import results_payload, run_federated, run_status, saved_state
from .arms import Arm, arm_names, parse_arms
from .summary import build_comparison

__all__ = [
    "ArmRun",
    "ComparisonError",
    "arm_run_id",
    "check_saved_config",
    "comparison_id",
    "plan_comparison",
    "run_comparison",
]


class ComparisonError(ValueError):
    """A comparison that cannot run as asked (bad arms or seeds, a config it cannot compare, a
    run id already holding a run made with another config)."""


@dataclass(frozen=True)
class ArmRun:
    """One run of a comparison: an arm with one seed, its run id and its config."""

    arm: str
    seed: int
    run_id: str
    config: FedTextGradConfig


def _slug(text: str, limit: int) -> str:
    slug = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_" else "-" for ch in text)
    return slug[:limit].strip("-_") or "x"


def comparison_id(config: FedTextGradConfig) -> str:
    """``<run name>-compare-<hash>``: the hash covers the whole config (models, data folder,
    seed, every setting), so the same config gives the same id and any change a new one."""
    digest = hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:10]
    return f"{_slug(config.run.name, 60)}-compare-{digest}"


def arm_run_id(comparison: str, arm: str, seed: int) -> str:
    """The run id of ``arm`` with ``seed`` in comparison ``comparison``: ``<comparison>-<arm>-seed<seed>``."""
    return check_run_id(f"{comparison}-{_slug(arm, 40)}-seed{seed}")


def _check_comparable(config: FedTextGradConfig) -> None:
    if config.review.required:
        raise ComparisonError("[review] required = true would pause every arm for a person; compare runs without review")
    if config.transport.kind != "local":
        raise ComparisonError(
            f"[transport] kind = {config.transport.kind!r}: compare runs every arm in this process (kind = \"local\"); "
            "the centralized arm needs every client's data in one place"
        )


def plan_comparison(
    config: FedTextGradConfig, *, arms: str | Iterable[str] | None = None, seeds: int = 1
) -> list[ArmRun]:
    """The runs of a comparison, arm by arm, seeds ``run.seed`` to ``run.seed + seeds - 1``.

    Args:
        config: The comparison's config (models and data folder already applied).
        arms: Arm names (a list or ``"centralized,uid"``); by default every arm (see
            :func:`~fedtextgrad_graph.experiments.arm_names`).
        seeds: How many seeds each arm runs with.

    Raises:
        ComparisonError: An unknown arm, fewer than one seed, or a config compare cannot run.
        ConfigError: An arm cannot be configured from ``config``.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ComparisonError(f"seeds must be a whole number >= 1, not {seeds!r}")
    _check_comparable(config)
    try:
        chosen: list[Arm] = parse_arms(arm_names() if arms is None else arms)
    except ValueError as exc:
        raise ComparisonError(str(exc)) from None
    comparison = comparison_id(config)
    plan = []
    for arm in chosen:
        for i in range(seeds):
            seed = config.run.seed + i
            seeded = config.model_copy(update={"run": config.run.model_copy(update={"seed": seed})})
            plan.append(ArmRun(arm.name, seed, arm_run_id(comparison, arm.name, seed), arm.configure(seeded)))
    return plan


def check_saved_config(run: ArmRun, saved: dict[str, Any]) -> None:
    """Raise :class:`ComparisonError` when the saved run under ``run.run_id`` was made with
    another config (it cannot be resumed as this arm)."""
    if saved.get("run_config") != run.config.model_dump(mode="json"):
        raise ComparisonError(
            f"run {run.run_id} exists with another config than the {run.arm} arm of this comparison would use; "
            "move or delete it to run the arm again"
        )


async def run_comparison(
    config: FedTextGradConfig,
    *,
    checkpointer: BaseCheckpointSaver[str],
    arms: str | Iterable[str] | None = None,
    seeds: int = 1,
    on_event: Callable[[ArmRun, RunEvent], None] | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run (or continue) a comparison and return the content of ``comparison.json``.

    Every run is saved in ``checkpointer`` under its derived id: call again with the same
    config and checkpointer after an interruption and finished runs are skipped, an
    interrupted one resumes from its last checkpoint.

    Args:
        config: The comparison's config.
        checkpointer: Where every run is saved (give a persistent one to resume).
        arms: Arm names; every arm by default.
        seeds: Seeds per arm.
        on_event: Called with the run and each of its progress events.
        verbose: Show each run live, as ``fedtextgrad-graph run`` does.

    Raises:
        ComparisonError: See :func:`plan_comparison`; or a run id holds another config's run.
        RunPaused: A run got fewer client updates than its quorum (call again to retry it).
    """
    plan = plan_comparison(config, arms=arms, seeds=seeds)
    payloads: dict[str, list[dict[str, Any]]] = {}
    for run in plan:
        saved = await saved_state(checkpointer, run.run_id)
        if saved is not None:
            check_saved_config(run, saved)
        if saved is None or run_status(saved) != "completed":
            listener = None if on_event is None else _bound(on_event, run)
            saved = await run_federated(
                run.config, run_id=run.run_id, checkpointer=checkpointer, resume=saved is not None, on_event=listener, verbose=verbose
            )
        payloads.setdefault(run.arm, []).append(results_payload(saved, run_id=run.run_id))
    return build_comparison(comparison_id(config), payloads)


def _bound(on_event: Callable[[ArmRun, RunEvent], None], run: ArmRun) -> Callable[[RunEvent], None]:
    return lambda event: on_event(run, event)

