"""Report sections for per-client numbers: each client's federated validation and test
scores, and the empty replies models returned, round by round."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from .replies import empty_reply_warnings
from .wire import ClientScore

__all__ = ["client_scores_html", "empty_replies_html"]


def _cell(score: ClientScore | None) -> str:
    if score is None:
        return "<td>–</td>"
    accuracy = "–" if score["accuracy"] is None else f"{score['accuracy']:.3f}"
    return f"<td>{accuracy} ({score['correct']}/{score['total']})</td>"


def client_scores_html(payload: Mapping[str, Any]) -> str:
    """A table of each client's own validation score per round (and test score), when the
    clients scored the prompts (federated evaluation); empty otherwise."""
    rounds = [r for r in payload["history"] if r.get("client_validation")]
    test: Mapping[str, ClientScore] = payload.get("client_test") or {}
    if not rounds and not test:
        return ""
    clients = list(dict.fromkeys([*(cid for r in rounds for cid in r["client_validation"]), *test]))
    head = '<th class="text">round</th>' + "".join(f"<th>{html.escape(cid)}</th>" for cid in clients)
    rows = [
        f'<tr><td class="text">{r["round"]}</td>' + "".join(_cell(r["client_validation"].get(cid)) for cid in clients) + "</tr>"
        for r in rounds
    ]
    if test:
        rows.append('<tr><td class="text">test (best prompt)</td>' + "".join(_cell(test.get(cid)) for cid in clients) + "</tr>")
    return (
        "<h3>Validation by client</h3>\n"
        '<p class="label">Each client scores the global prompt on its own data: accuracy (correct/total).</p>\n'
        f'<div style="overflow-x: auto"><table id="client-scores"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div>\n'
    )


def empty_replies_html(payload: Mapping[str, Any]) -> str:
    """The rounds in which a model returned empty replies, by caller and role; empty if none."""
    lines = [line for r in payload["history"] for line in empty_reply_warnings(r["round"], r.get("empty_replies", {}))]
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<h3>Empty replies</h3>\n<ul id="empty-replies">{items}</ul>\n'
