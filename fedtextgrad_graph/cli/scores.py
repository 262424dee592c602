"""Scores beyond the pooled figure, for the terminal: each client's own validation (and test)
score of a federated evaluation, each task's, and each round's local-step success rate and
LLM tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from ..costs import cost_text
from ..models.usage import usage_rows
from ..wire import ClientScore, RoleUsage, TokenCount

__all__ = [
    "MAX_ROUND_COLUMNS",
    "MERGE_LEGEND",
    "ROUND_WORK_LEGEND",
    "USAGE_LEGEND",
    "client_scores_line",
    "client_scores_table",
    "merge_table",
    "round_work_table",
    "task_scores_table",
    "tokens_line",
    "usage_table",
]

MAX_ROUND_COLUMNS = 4
"""The latest rounds shown per client, so the table fits 80 columns."""


def _cell(score: ClientScore | None) -> str:
    if score is None:
        return "–"
    accuracy = "–" if score["accuracy"] is None else f"{score['accuracy']:.2f}"
    return f"{accuracy} {score['correct']}/{score['total']}"


def client_scores_line(scores: Mapping[str, ClientScore]) -> str:
    """``client-1 0.80 4/5, client-2 ...``: one round's scores (by client or task), on one line."""
    return ", ".join(f"{cid} {_cell(score)}" for cid, score in scores.items())


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))


def _scores_table(
    title: str, who: str, columns: Sequence[tuple[str, Mapping[str, ClientScore]]], test: Mapping[str, ClientScore] | None
) -> Table:
    """A row per client or task (``who``), a column per round (``columns``) and the test."""
    names = list(dict.fromkeys([*(name for _, scores in columns for name in scores), *(test or {})]))
    table = _table(title)
    table.add_column(who)
    for header, _ in columns:
        table.add_column(header, justify="right")
    if test:
        table.add_column("test", justify="right")
    for name in names:
        cells = [_cell(scores.get(name)) for _, scores in columns]
        table.add_row(escape(name), *cells, *([_cell(test.get(name))] if test else []))
    return table


def client_scores_table(history: Sequence[Mapping[str, Any]], test: Mapping[str, ClientScore] | None) -> Table | None:
    """A row per client: its validation score in the latest rounds (accuracy, correct/total)
    and its test score; ``None`` when no round was scored by the clients."""
    rounds = [r for r in history if r.get("client_validation")][-MAX_ROUND_COLUMNS:]
    if not rounds and not test:
        return None
    return _scores_table("validation by client", "client", [(f"round {r['round']}", r["client_validation"]) for r in rounds], test)


def task_scores_table(payload: Mapping[str, Any]) -> Table | None:
    """A row per task: its validation score at the baseline and in the latest rounds, and its
    test score; ``None`` for a run of one task (the pooled figures are that task's)."""
    columns = [("baseline", payload.get("baseline_by_task") or {})]
    columns += [(f"round {r['round']}", r.get("validation_by_task") or {}) for r in payload["history"]]
    columns = [(header, scores) for header, scores in columns if scores][-MAX_ROUND_COLUMNS:]
    test = payload.get("test_by_task")
    tasks = {task for _, scores in columns for task in scores} | set(test or {})
    if len(tasks) < 2:
        return None
    return _scores_table("validation by task", "task", columns, test)


ROUND_WORK_LEGEND = (
    "steps: local steps accepted/attempted by the clients that uploaded (success: their ratio); "
    "tokens in, out: as the providers reported them; no usage: calls whose reply reported none"
)


def _tokens(tokens: TokenCount | None) -> tuple[str, str, str]:
    if tokens is None:
        return "–", "–", "–"
    return str(tokens["input"]), str(tokens["output"]), str(tokens["calls_without_usage"])


def round_work_table(history: Sequence[Mapping[str, Any]]) -> Table | None:
    """A row per round: local steps accepted/attempted, the success rate, and the round's LLM
    tokens; ``None`` when no round recorded them (a run made before they were)."""
    rounds = [r for r in history if "update_success_rate" in r or "llm_tokens" in r]
    if not rounds:
        return None
    table = _table("local steps and LLM tokens by round")
    for header in ("round", "steps", "success", "tokens in", "tokens out", "no usage"):
        table.add_column(header, justify="right")
    for r in rounds:
        metrics = r["client_metrics"].values()
        accepted, attempted = sum(m["accepted"] for m in metrics), sum(len(m["steps"]) for m in metrics)
        rate = r.get("update_success_rate")
        table.add_row(str(r["round"]), f"{accepted}/{attempted}", "–" if rate is None else f"{rate:.2f}", *_tokens(r.get("llm_tokens")))
    return table


MERGE_LEGEND = (
    "cover: share of the unique client instructions the global prompt keeps (of units); UID: spread "
    "of its per-sentence surprisal, lower = more uniform (concat: the deduplicated concatenation's); "
    "length: against the longest client prompt; repairs: repair tries; targets: met or missed "
    "(uid only); fallback: the deduplicated concatenation was kept"
)


def merge_table(history: Sequence[Mapping[str, Any]]) -> Table | None:
    """A row per round that merged: coverage, UID score (and the deduplicated concatenation's),
    length ratio, repairs, targets and fallback; ``None`` when no round recorded a merge."""
    merges = [(r["round"], r["merge"]) for r in history if r.get("merge")]
    if not merges:
        return None
    strategies = ", ".join(dict.fromkeys(m["strategy"] for _, m in merges))
    estimators = ", ".join(dict.fromkeys(m["estimator"] for _, m in merges))
    table = _table(f"merge by round ({escape(strategies)}; surprisal: {escape(estimators)})")
    for header in ("round", "cover", "units", "UID", "concat", "length", "repairs", "targets", "fallback"):
        table.add_column(header, justify="right")
    for round, m in merges:
        targets = {None: "–", True: "met", False: "missed"}[m["met_targets"]]
        table.add_row(
            str(round),
            f"{m['coverage']:.2f}",
            f"{m['covered']}/{m['units']}",
            f"{m['uid_score']:.3f}",
            f"{m['concat_uid_score']:.3f}",
            f"{m['length_ratio']:.2f}x",
            str(m["repairs"]),
            targets,
            "yes" if m["fallback"] else "no",
        )
    return table


def tokens_line(payload: Mapping[str, Any]) -> str | None:
    """``LLM tokens: 1200 in, 300 out ...``: the run's total, or ``None`` if not recorded."""
    tokens: TokenCount | None = payload.get("llm_tokens")
    if tokens is None:
        return None
    line = f"LLM tokens (provider-reported, rounds, baseline and test): {tokens['input']} in, {tokens['output']} out"
    if tokens["calls_without_usage"]:
        line += f"; {tokens['calls_without_usage']} call(s) reported no usage (not counted)"
    cost, priced = payload.get("cost_usd"), bool((payload.get("config") or {}).get("pricing"))
    if cost is not None or priced:
        line += f"; cost {cost_text(cost, priced)}" + (" ([pricing])" if cost is not None else "")
    return line


USAGE_LEGEND = (
    "the run's LLM calls (rounds, baseline and final test) and the tokens their providers reported, "
    "by role, then by caller (a client's own calls: its training and its scoring; server: the server's)"
)


def usage_table(payload: Mapping[str, Any]) -> Table | None:
    """The run's calls and tokens by role, then by caller (with several callers); ``None``
    for a run recorded before they were."""
    usage: Mapping[str, Mapping[str, RoleUsage]] = payload.get("llm_usage") or {}
    if not usage:
        return None
    table = _table("LLM usage")
    for header in ("by", "calls", "tokens in", "tokens out", "no usage"):
        table.add_column(header, justify="left" if header == "by" else "right")
    for name, n in usage_rows(usage).items():
        table.add_row(name, str(n["calls"]), str(n["input"]), str(n["output"]), str(n["calls_without_usage"]))
    return table
