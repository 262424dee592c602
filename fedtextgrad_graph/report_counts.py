"""Report sections for numbers beyond the pooled ones: each client's federated validation and
test scores, each task's, the LLM calls, tokens and cost, and the empty replies models
returned, round by round."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from .costs import cost_text
from .models.usage import add_usage, usage_rows
from .replies import empty_reply_warnings
from .wire import ClientScore, RoleUsage

__all__ = ["client_scores_html", "empty_replies_html", "task_scores_html", "usage_html"]


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


def _usage_cells(n: RoleUsage | None) -> str:
    if n is None:
        return "<td>–</td>"
    missing = f", {n['calls_without_usage']} without usage" if n["calls_without_usage"] else ""
    calls = f"{n['calls']} call" + ("" if n["calls"] == 1 else "s")
    return f"<td>{calls}: {n['input']} / {n['output']}{missing}</td>"


def usage_html(payload: Mapping[str, Any]) -> str:
    """The run's LLM calls and provider-reported tokens by role and caller, then by round and
    role with each part's cost under ``[pricing]``; empty for a run recorded before usage was."""
    usage: Mapping[str, Mapping[str, RoleUsage]] = payload.get("llm_usage") or {}
    if not usage:
        return ""
    priced = bool((payload.get("config") or {}).get("pricing"))
    totals = "".join(
        f'<tr><td class="text">{html.escape(name)}</td><td>{n["calls"]}</td><td>{n["input"]}</td><td>{n["output"]}</td>'
        f"<td>{n['calls_without_usage']}</td></tr>"
        for name, n in usage_rows(usage).items()
    )
    parts = [("0 (baseline)", payload.get("baseline_llm_usage"), payload.get("baseline_cost_usd"))]
    parts += [(str(r["round"]), r.get("llm_usage"), r.get("cost_usd")) for r in payload["history"]]
    parts.append(("test (best prompt)", payload.get("test_llm_usage"), payload.get("test_cost_usd")))
    by_role = [(label, add_usage(*({"": roles} for roles in part.values()))[""], cost) for label, part, cost in parts if part]
    roles = list(dict.fromkeys(role for _, counts, _ in by_role for role in counts))
    head = '<th class="text">round</th>' + "".join(f"<th>{html.escape(role)}</th>" for role in roles) + "<th>cost (USD)</th>"
    body = "".join(
        f'<tr><td class="text">{html.escape(label)}</td>'
        + "".join(_usage_cells(counts.get(role)) for role in roles)
        + f"<td>{html.escape(cost_text(cost, priced))}</td></tr>"
        for label, counts, cost in by_role
    )
    return (
        "<h3>LLM usage</h3>\n"
        '<p class="label">The LLM calls of the rounds, the baseline and the final test, and the tokens their providers '
        "reported, by role, then by caller (a client's own calls: its training and its scoring; server: the server's). "
        "Calls without usage reported no tokens; they are counted, never estimated.</p>\n"
        '<table id="llm-usage"><thead><tr><th class="text">by</th><th>calls</th><th>tokens in</th><th>tokens out</th>'
        f"<th>no usage</th></tr></thead><tbody>{totals}</tbody></table>\n"
        '<p class="label">By round and role: calls, then tokens in / out; the cost under [pricing].</p>\n'
        f'<div style="overflow-x: auto"><table id="llm-usage-by-round"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>\n'
    )
