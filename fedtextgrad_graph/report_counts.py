"""Report sections for numbers beyond the pooled ones: each client's federated validation and
test scores, each task's, and the empty replies models returned, round by round."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from .replies import empty_reply_warnings
from .wire import ClientScore

__all__ = ["client_scores_html", "empty_replies_html", "task_scores_html"]


def _cell(score: ClientScore | None) -> str:
    if score is None:
        return "<td>–</td>"
    accuracy = "–" if score["accuracy"] is None else f"{score['accuracy']:.3f}"
    return f"<td>{accuracy} ({score['correct']}/{score['total']})</td>"


def _scores_html(title: str, note: str, table_id: str, rows: list[tuple[str, Mapping[str, ClientScore]]]) -> str:
    """A table with a row per round (``rows``: its label and scores) and a column per name."""
    names = list(dict.fromkeys(name for _, scores in rows for name in scores))
    head = '<th class="text">round</th>' + "".join(f"<th>{html.escape(name)}</th>" for name in names)
    body = [
        f'<tr><td class="text">{html.escape(label)}</td>' + "".join(_cell(scores.get(name)) for name in names) + "</tr>"
        for label, scores in rows
    ]
    return (
        f"<h3>{title}</h3>\n"
        f'<p class="label">{note}</p>\n'
        f'<div style="overflow-x: auto"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table></div>\n'
    )


def client_scores_html(payload: Mapping[str, Any]) -> str:
    """A table of each client's own validation score per round (and test score), when the
    clients scored the prompts (federated evaluation); empty otherwise."""
    rows = [(str(r["round"]), r["client_validation"]) for r in payload["history"] if r.get("client_validation")]
    test: Mapping[str, ClientScore] = payload.get("client_test") or {}
    if test:
        rows.append(("test (best prompt)", test))
    if not rows:
        return ""
    note = "Each client scores the global prompt on its own data: accuracy (correct/total)."
    return _scores_html("Validation by client", note, "client-scores", rows)


def task_scores_html(payload: Mapping[str, Any]) -> str:
    """A table of each task's validation score at the baseline and per round (and test score),
    for a run of several tasks; empty otherwise (the pooled figures are the one task's)."""
    rows = [("0 (baseline)", payload.get("baseline_by_task") or {})]
    rows += [(str(r["round"]), r.get("validation_by_task") or {}) for r in payload["history"]]
    rows.append(("test (best prompt)", payload.get("test_by_task") or {}))
    rows = [(label, scores) for label, scores in rows if scores]
    if len({task for _, scores in rows for task in scores}) < 2:
        return ""
    note = "The global prompt's score on each task's examples: accuracy (correct/total)."
    return _scores_html("Validation by task", note, "task-scores", rows)


def empty_replies_html(payload: Mapping[str, Any]) -> str:
    """The rounds in which a model returned empty replies, by caller and role; empty if none."""
    lines = [line for r in payload["history"] for line in empty_reply_warnings(r["round"], r.get("empty_replies", {}))]
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<h3>Empty replies</h3>\n<ul id="empty-replies">{items}</ul>\n'
