"""The table ``fedtextgrad-graph compare`` prints: one row per arm (and one per arm and task when
the runs have several tasks), within 80 columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.table import Table

from .view import print_table

__all__ = ["COMPARISON_LEGEND", "print_comparison"]

COMPARISON_LEGEND = (
    "test: test accuracy of each run's best prompt, mean±std over seeds; val: best validation accuracy; "
    "calls, tokens: LLM calls and provider-reported tokens (input+output) per run; chars: the tested prompt's length; "
    "cover: coverage of the client instructions; UID: UID score (spread of per-sentence surprisal, lower = more uniform); "
    "-: not recorded"
)


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _mean_std(figure: Mapping[str, Any]) -> str:
    mean, std = figure.get("mean"), figure.get("std")
    if mean is None:
        return "-"
    return f"{mean:.3f}" if std is None else f"{mean:.3f}±{std:.3f}"


def _count(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value:.0f}"


def _tokens(tokens: Mapping[str, Mapping[str, Any]]) -> str:
    used = [tokens.get(kind, {}).get("mean") for kind in ("input", "output")]
    return "-" if None in used else _count(sum(v for v in used if v is not None))


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))


def print_comparison(comparison: Mapping[str, Any]) -> None:
    """Print ``comparison`` (the content of ``comparison.json``)."""
    seeds = len(comparison["seeds"])
    table = _table(f"comparison {comparison['comparison_id']} ({seeds} seed{'s' if seeds != 1 else ''})")
    for column in ("arm", "test", "val", "calls", "tokens", "chars", "cover", "UID"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, result in comparison["results"].items():
        table.add_row(
            arm,
            _mean_std(result["test_accuracy"]),
            _number(result["best_validation_accuracy"]["mean"]),
            _count(result["llm_calls"]["mean"]),
            _tokens(result["llm_tokens"]),
            _count(result["prompt_chars"]["mean"]),
            _number(result["coverage"]["mean"], 2),
            _number(result["uid_score"]["mean"]),
        )
    print_table(table, COMPARISON_LEGEND)
    tasks = sorted({task for result in comparison["results"].values() for task in result["test_by_task"]})
    if len(tasks) > 1:
        by_task = _table("test accuracy by task (mean±std over seeds)")
        for column in ("arm", *tasks):
            by_task.add_column(column, justify="left" if column == "arm" else "right")
        for arm, result in comparison["results"].items():
            by_task.add_row(arm, *(_mean_std(result["test_by_task"].get(task, {})) for task in tasks))
        print_table(by_task, "each task scored on its own test split with its own metric")
