"""Each client's own validation (and test) score of a federated evaluation, for the terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from ..wire import ClientScore

__all__ = ["MAX_ROUND_COLUMNS", "client_scores_line", "client_scores_table"]

MAX_ROUND_COLUMNS = 4
"""The latest rounds shown per client, so the table fits 80 columns."""


def _cell(score: ClientScore | None) -> str:
    if score is None:
        return "–"
    accuracy = "–" if score["accuracy"] is None else f"{score['accuracy']:.2f}"
    return f"{accuracy} {score['correct']}/{score['total']}"


def client_scores_line(scores: Mapping[str, ClientScore]) -> str:
    """``client-1 0.80 4/5, client-2 ...``: one round's scores, on one line."""
    return ", ".join(f"{cid} {_cell(score)}" for cid, score in scores.items())


def client_scores_table(history: Sequence[Mapping[str, Any]], test: Mapping[str, ClientScore] | None) -> Table | None:
    """A row per client: its validation score in the latest rounds (accuracy, correct/total)
    and its test score; ``None`` when no round was scored by the clients."""
    rounds = [r for r in history if r.get("client_validation")][-MAX_ROUND_COLUMNS:]
    if not rounds and not test:
        return None
    clients = list(dict.fromkeys([*(cid for r in rounds for cid in r["client_validation"]), *(test or {})]))
    table = Table(title="validation by client", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))
    table.add_column("client")
    for r in rounds:
        table.add_column(f"round {r['round']}", justify="right")
    if test:
        table.add_column("test", justify="right")
    for cid in clients:
        cells = [_cell(r["client_validation"].get(cid)) for r in rounds]
        table.add_row(escape(cid), *cells, *([_cell(test.get(cid))] if test else []))
    return table
