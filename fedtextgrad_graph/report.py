"""Turn a run's saved state into a report folder: PNG plots and one self-contained HTML page.

The page has no scripts and no external references (the plots are embedded as data URIs), so it
opens offline. It works on unfinished runs: finished rounds are shown, and a round in progress
with whatever its clients have uploaded so far.
"""

from __future__ import annotations

import base64
import difflib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .costs import cost_text
from .report_counts import client_scores_html, empty_replies_html, task_scores_html, usage_html
from .report_merge import merge_html
from .runs import results_payload
from .text import compose_prompt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

__all__ = ["ReportFiles", "word_diff_html", "write_report"]

OUTCOME_COLORS = {"accepted": "#2a9d8f", "rejected": "#e9a23b", "malformed": "#c44e52", "blocked": "#6f42c1", "unchanged": "#9e9e9e"}
_TOKENS = re.compile(r"\S+|\s+")
_MIN_ANCHOR_WORDS = 3
_SHOWN_SCREENED_CHARS = 2000  # a left-out upload may be huge (the size screen's case)


@dataclass(frozen=True)
class ReportFiles:
    """The files a report wrote: the HTML page and the PNG plots it embeds."""

    html: Path
    plots: tuple[Path, ...]


@dataclass(frozen=True)
class _Round:
    """One round of the prompt lineage: the prompt it started from, the uploads, the merge."""

    round: int
    start_prompt: str
    clients: list[str]
    client_prompts: dict[str, str]
    client_metrics: dict[str, dict[str, Any]]
    global_prompt: str | None
    record: Mapping[str, Any] | None  # None while the round is in progress


def write_report(
    state: Mapping[str, Any],
    out_dir: Path,
    *,
    run_id: str,
    resume_command: str | None = None,
) -> ReportFiles:
    """Write ``report.html`` and its PNG plots for a run into ``out_dir``.

    Args:
        state: The run's round-graph state (final, or from its latest checkpoint).
        out_dir: The report folder; created if missing, files in it are overwritten.
        run_id: The run's id, shown in the page header.
        resume_command: The command that resumes this run, shown while it is unfinished;
            by default ``fedtextgrad-graph resume RUN_ID`` (``review RUN_ID`` while a round
            awaits review).

    Raises:
        ImportError: matplotlib (the ``viz`` extra) is not installed and a round has finished.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    history: list[Mapping[str, Any]] = list(state.get("history") or [])
    plots: list[Path] = []
    if history:
        local_steps = int(state.get("run_config", {}).get("client", {}).get("local_steps", 1))
        figures = {
            "validation.png": _validation_figure(history, state.get("baseline_accuracy"), state.get("best_round")),
            **_task_validation_figures(history, state.get("baseline_by_task")),
            "client_train.png": _client_train_figure(history, local_steps),
            "prompt_length.png": _prompt_length_figure(history),
            "updates.png": _updates_figure(history),
        }
        if any(r.get("merge") for r in history):
            figures["surprisal.png"] = _surprisal_figure(history)
        for name, figure in figures.items():
            figure.savefig(out_dir / name, format="png", metadata={"Software": None})
            plots.append(out_dir / name)
    payload = results_payload(dict(state), run_id=run_id)
    page = out_dir / "report.html"
    verb = "review" if payload["pending_review"] else "resume"
    resume = resume_command or f"fedtextgrad-graph {verb} {run_id}"
    page.write_text(_page(payload, _lineage(state), plots, resume), encoding="utf-8")
    return ReportFiles(html=page, plots=tuple(plots))


def word_diff_html(old: str, new: str) -> str:
    """``new`` against ``old`` word by word, as escaped HTML: removed words in ``<del>``,
    added words in ``<ins>``, unchanged text as is. Runs of fewer than three unchanged words
    between two changes count as changed, so a rewrite reads as one removal and one addition
    rather than a patchwork anchored on words like "the"."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    chunks: list[tuple[bool, int, int, int, int]] = []  # (unchanged, i1, i2, j1, j2), changes merged
    for position, (op, i1, i2, j1, j2) in enumerate(opcodes):
        inner = 0 < position < len(opcodes) - 1
        unchanged = op == "equal" and not (inner and sum(not t.isspace() for t in a[i1:i2]) < _MIN_ANCHOR_WORDS)
        if chunks and not unchanged and not chunks[-1][0]:
            _, i1, _, j1, _ = chunks.pop()  # extend the previous change to cover this one
        chunks.append((unchanged, i1, i2, j1, j2))
    parts = []
    for unchanged, i1, i2, j1, j2 in chunks:
        if unchanged:
            parts.append(html.escape("".join(b[j1:j2])))
            continue
        if i2 > i1:
            parts.append(f"<del>{html.escape(''.join(a[i1:i2]))}</del>")
        if j2 > j1:
            parts.append(f"<ins>{html.escape(''.join(b[j1:j2]))}</ins>")
    return "".join(parts)


# --- the prompt lineage -----------------------------------------------------------------------


def _initial_prompt(state: Mapping[str, Any]) -> str:
    prompt = state.get("run_config", {}).get("prompt", {})
    return compose_prompt(prompt.get("instruction", ""), prompt.get("format_instruction", ""))


def _lineage(state: Mapping[str, Any]) -> list[_Round]:
    """Finished rounds from the history, then the round in progress if there is one."""
    rounds, start = [], _initial_prompt(state)
    for record in state.get("history") or []:
        rounds.append(
            _Round(
                round=record["round"],
                start_prompt=start,
                clients=list(record["clients"]),
                client_prompts=dict(record["client_prompts"]),
                client_metrics=dict(record["client_metrics"]),
                global_prompt=record["global_prompt"],
                record=record,
            )
        )
        start = record["global_prompt"]
    current = state.get("round", 0)
    if current > (rounds[-1].round if rounds else 0):
        updates = {cid: u for cid, u in (state.get("client_updates") or {}).items() if u["round"] == current}
        metrics = state.get("round_metrics") or {}
        aggregated = "previous_prompt" in metrics and not metrics.get("merge_progress")  # not while repairing
        rounds.append(
            _Round(
                round=current,
                start_prompt=start,
                clients=list(state.get("selected_clients") or updates),
                client_prompts={cid: u["prompt"] for cid, u in updates.items()},
                client_metrics=dict(updates),
                global_prompt=state.get("global_prompt") if aggregated else None,
                record=None,
            )
        )
    return rounds


# --- plots ------------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 3.6) -> Figure:
    """A matplotlib figure drawn with Agg, without pyplot (no global backend change)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the run report needs matplotlib: pip install 'fedtextgrad-graph[viz]'") from exc
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _integer_ticks(axis: Axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _x_span(ax: Axes, first: float, last: float) -> None:
    """Integer x ticks from ``first`` to ``last`` with half a unit of room (one round is one point)."""
    _integer_ticks(ax.xaxis)
    ax.set_xlim(first - 0.5, last + 0.5)


def _validation_figure(history: Sequence[Mapping[str, Any]], baseline: float | None, best_round: int | None) -> Figure:
    figure = _figure()
    ax = figure.add_subplot()
    points = ([(0, baseline)] if baseline is not None else []) + [(r["round"], r["validation_accuracy"]) for r in history]
    ax.plot([x for x, _ in points], [y for _, y in points], marker="o", color="#3b6ea8", label="validation accuracy")
    if baseline is not None:
        ax.plot([0], [baseline], "s", markersize=8, color="#777777", label="baseline (initial prompt)")
    best = dict(points).get(best_round) if best_round is not None else None
    if best_round is not None and best is not None:
        ax.plot([best_round], [best], "*", markersize=16, color="#d4a017", label=f"best: round {best_round}")
        ax.annotate(f"{best:.3f}", (best_round, best), textcoords="offset points", xytext=(0, 10), ha="center")
    ax.set(xlabel="round", ylabel="validation accuracy", ylim=(-0.02, 1.1), title="Validation accuracy per round")
    _x_span(ax, points[0][0], points[-1][0])
    ax.grid(alpha=0.3)
    # outside the axes, as in the other plots: inside, it hid the best marker of low-accuracy runs
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return figure


def _task_validation_figures(history: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None) -> dict[str, Figure]:
    """``validation_by_task.png``: one line per task, round by round (from the baseline), for
    a run of several tasks; none otherwise (the pooled plot is the one task's)."""
    points: dict[str, list[tuple[int, float]]] = {}
    for round, scores in [(0, baseline or {}), *((r["round"], r.get("validation_by_task") or {}) for r in history)]:
        for task, score in scores.items():
            if score["accuracy"] is not None:
                points.setdefault(task, []).append((round, score["accuracy"]))
    if len(points) < 2:
        return {}
    figure = _figure()
    ax = figure.add_subplot()
    for task, xy in points.items():
        ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=task)
    first = min(x for xy in points.values() for x, _ in xy)
    ax.set(xlabel="round (0: baseline)", ylabel="validation accuracy", ylim=(-0.02, 1.1), title="Validation accuracy per task")
    _x_span(ax, first, history[-1]["round"])
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", title="task")
    return {"validation_by_task.png": figure}


_LEGEND_CLIENTS = 30  # the most clients the train-accuracy plot names in its legend


def _client_train_figure(history: Sequence[Mapping[str, Any]], local_steps: int) -> Figure:
    figure = _figure()
    ax = figure.add_subplot()
    steps_by_client: dict[str, list[tuple[int, float]]] = {}
    for record in history:
        for cid, metrics in record["client_metrics"].items():
            for step in metrics["steps"]:
                index = (step["round"] - 1) * local_steps + step["step"]
                steps_by_client.setdefault(cid, []).append((index, step["train_accuracy"]))
    for cid in sorted(steps_by_client):
        xs: list[float] = []
        ys: list[float] = []
        for index, accuracy in sorted(steps_by_client[cid]):
            if xs and index != xs[-1] + 1:
                xs.append(float("nan"))  # the client was not selected in between: break the line
                ys.append(float("nan"))
            xs.append(index)
            ys.append(accuracy)
        ax.plot(xs, ys, marker="o", markersize=4, label=cid)
    for record in history:
        ax.axvline((record["round"] - 1) * local_steps + 0.5, color="#bbbbbb", linestyle=":", linewidth=1)
        middle = (record["round"] - 0.5) * local_steps + 0.5
        ax.text(middle, 1.06, f"round {record['round']}", ha="center", fontsize="small", color="#555555")
    ax.set(
        xlabel=f"local step across rounds ((round - 1) x {local_steps} + step)",
        ylabel="batch train accuracy",
        ylim=(-0.02, 1.14),
        title="Each client's train accuracy per local step",
    )
    _x_span(ax, (history[0]["round"] - 1) * local_steps + 1, history[-1]["round"] * local_steps)
    ax.grid(alpha=0.3)
    if len(steps_by_client) <= _LEGEND_CLIENTS:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", title="client")
    else:  # a legend of hundreds of clients is unreadable, and takes matplotlib seconds per hundred
        ax.set_title(f"Each client's train accuracy per local step ({len(steps_by_client)} clients, too many to name)")
    return figure


def _prompt_length_figure(history: Sequence[Mapping[str, Any]]) -> Figure:
    figure = _figure()
    figure.suptitle("Aggregated prompt length per round")
    rounds = [r["round"] for r in history]
    tokenizer = history[-1].get("tokenizer", "?")
    panels = [("prompt_chars", "characters", "#3b6ea8"), ("prompt_tokens", f"tokens ({tokenizer})", "#c44e52")]
    for position, (key, label, color) in enumerate(panels, start=1):
        ax = figure.add_subplot(1, 2, position)
        ax.plot(rounds, [r[key] for r in history], marker="o", color=color)
        ax.set(xlabel="round", ylabel=label)
        ax.set_ylim(bottom=0, top=max(r[key] for r in history) * 1.15 + 1)
        _x_span(ax, rounds[0], rounds[-1])
        ax.grid(alpha=0.3)
    return figure


def _updates_figure(history: Sequence[Mapping[str, Any]]) -> Figure:
    figure = _figure()
    ax = figure.add_subplot()
    rounds = [r["round"] for r in history]
    bottom = [0] * len(history)
    for outcome, color in OUTCOME_COLORS.items():
        counts = [sum(m.get(outcome, 0) for m in r["client_metrics"].values()) for r in history]
        ax.bar(rounds, counts, bottom=bottom, color=color, label=outcome, width=0.6)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set(xlabel="round", ylabel="local steps", title="Local steps per round, by outcome")
    _x_span(ax, rounds[0], rounds[-1])
    _integer_ticks(ax.yaxis)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return figure


def _surprisal_figure(history: Sequence[Mapping[str, Any]]) -> Figure:
    """The global prompt's per-sentence surprisal, one line per merged round."""
    figure = _figure()
    ax = figure.add_subplot()
    merged = [r for r in history if r.get("merge")]
    longest = 1
    for i, r in enumerate(merged):
        values = r["merge"]["surprisal"]["sentences"]
        longest = max(longest, len(values))
        # earlier rounds drawn wider and with other markers: a prompt that grew by appending
        # repeats the previous round's profile, and its line must stay visible under the new one
        ax.plot(
            range(1, len(values) + 1),
            values,
            marker="osD^v<>"[i % 7],
            markersize=4 + 2 * (len(merged) - 1 - i) / max(1, len(merged) - 1),
            linewidth=1 + 2 * (len(merged) - 1 - i) / max(1, len(merged) - 1),
            label=f"round {r['round']} (UID {r['merge']['uid_score']:.2f})",
        )
    last = merged[-1]["merge"]
    ax.set(
        xlabel="sentence of the global prompt (format instruction not scored)",
        ylabel=f"surprisal ({last['surprisal']['unit']})",
        title=f"Per-sentence surprisal of the global prompt ({last['estimator']})",
    )
    _x_span(ax, 1, longest)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    return figure


# --- the page ---------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2328; background: #f6f8fa; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 1.25em; margin: 36px 0 12px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 1.1em; margin: 0 0 10px; }
.banner { background: #fff3bf; border: 1px solid #e0b400; border-radius: 6px; padding: 10px 14px; margin: 12px 0; }
.note { background: #ddf4ff; border: 1px solid #54aeff; border-radius: 6px; padding: 10px 14px; margin: 12px 0; }
.badge { display: inline-block; border-radius: 10px; padding: 0 9px; font-size: 0.85em; font-weight: 600; }
.completed { background: #dafbe1; color: #116329; }
.incomplete { background: #fff1e5; color: #953800; }
.awaiting_review { background: #fff8c5; color: #7d4e00; }
.best-badge { background: #fff8c5; color: #7d4e00; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 12px 0; }
dl.summary dt { color: #57606a; }
dl.summary dd { margin: 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; }
.plots figure { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
.plots img { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; background: #fff; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 5px 10px; text-align: right; }
th { background: #eef1f4; }
td:first-child { white-space: nowrap; }
td.text, th.text { text-align: left; }
tr.best td { background: #fff8c5; }
tr.running td { background: #fff1e5; }
section.round { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 16px 18px; margin: 0 0 18px; }
.label { font-size: 0.85em; color: #57606a; margin-bottom: 3px; }
.prompt { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; border: 1px solid #e1e4e8;
          border-radius: 4px; padding: 8px 10px; font-size: 0.93em; }
.global .prompt { background: #eef6ff; border-color: #b6d4fe; }
.arrow { color: #57606a; margin: 8px 0 8px 6px; font-size: 0.9em; }
.clients { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 10px; }
.pending .prompt { color: #57606a; font-style: italic; }
.screened { color: #953800; font-size: 0.9em; }
.screened-out .prompt { background: #fff1e5; border-color: #ffc680; }
.diff { margin-top: 10px; }
ins { background: #ccffd8; text-decoration: none; }
del { background: #ffd7d5; color: #82071e; }
"""


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _page(payload: Mapping[str, Any], lineage: Sequence[_Round], plots: Sequence[Path], resume: str) -> str:
    run_id = html.escape(payload["run_id"])
    sections = "".join(_round_section(r, payload["best_round"]) for r in lineage) or "<p>No round has started yet.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>FedTextGrad run {run_id}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{_header(payload, resume)}\n<h2>Plots</h2>\n{_plots(plots)}\n"
        f"<h2>Rounds</h2>\n{_table(payload, lineage)}\n{client_scores_html(payload)}{task_scores_html(payload)}{usage_html(payload)}{empty_replies_html(payload)}{merge_html(payload)}"
        f"<h2>Prompt lineage</h2>\n{sections}\n"
        "</main>\n</body>\n</html>\n"
    )


def _header(payload: Mapping[str, Any], resume: str) -> str:
    status = payload["status"]
    parts = [f"<h1>FedTextGrad run {html.escape(payload['run_id'])}</h1>", f'<span class="badge {status}">{status}</span>']
    if payload["simulated"]:
        parts.append(
            '<div class="banner"><strong>SIMULATED MODEL</strong>: this run used scripted offline replies, '
            "not a language model; its scores show the pipeline works, not prompt quality.</div>"
        )
    if status == "incomplete":
        parts.append(
            '<div class="note">This run has not finished: it is still running or was interrupted. '
            f"Continue it with <code>{html.escape(resume)}</code>.</div>"
        )
    if payload.get("pending_review"):
        pending = payload["pending_review"]
        parts.append(
            f'<div class="note">Round {pending["round"]} awaits review: its merged prompt scored '
            f"{_fmt(pending['candidate_score'])} on validation. See it with <code>{html.escape(resume)}</code>, "
            "then add <code>--approve</code>, <code>--edit FILE</code> or <code>--reject</code>.</div>"
        )
    best_round = payload["best_round"]
    best_name = "baseline (initial prompt)" if best_round == 0 else f"round {best_round}"
    best = "–" if best_round is None else f"{best_name}: {_fmt(payload['best_validation_accuracy'])}"
    config = payload["config"] or {}
    rows = {
        "Stop reason": payload["stop_reason"] or "none yet",
        "Rounds finished": f"{payload['rounds']} of at most {config.get('convergence', {}).get('max_rounds', '?')}",
        "Best": best,
        "Baseline validation accuracy": _fmt(payload["baseline_validation_accuracy"]),
        "Test accuracy (best prompt)": _fmt(payload["test_accuracy"]),
        "LLM tokens (provider-reported)": _tokens(payload.get("llm_tokens")),
        "Cost (USD, [pricing])": cost_text(payload.get("cost_usd"), bool(config.get("pricing"))),
        "Aggregation": config.get("aggregation", {}).get("strategy", "?"),
        "Models": ", ".join(f"{role}: {name}" for role, name in payload["models"].items()) or "none recorded yet (no round finished)",
    }
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows.items())
    return "\n".join(parts) + f'\n<dl class="summary">{items}</dl>'


def _tokens(tokens: Mapping[str, int] | None) -> str:
    """``1200 in, 300 out`` (and the calls that reported no usage), or ``–`` if not recorded."""
    if tokens is None:
        return "–"
    text = f"{tokens['input']} in, {tokens['output']} out"
    return text + (f" ({tokens['calls_without_usage']} call(s) reported no usage)" if tokens["calls_without_usage"] else "")


def _plots(plots: Sequence[Path]) -> str:
    if not plots:
        return "<p>No round has finished yet: the plots appear once the first round is done.</p>"
    figures = []
    for path in plots:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)} plot"></figure>')
    return f'<div class="plots">{"".join(figures)}</div>'


def _table(payload: Mapping[str, Any], lineage: Sequence[_Round]) -> str:
    columns = [
        "round", "clients", "validation accuracy", "improved", *OUTCOME_COLORS, "redacted", "prompt chars", "tokens", "LLM calls",
        "steps accepted / attempted", "LLM tokens in / out",
    ]
    head = "".join(f'<th class="text">{c}</th>' if c == "clients" else f"<th>{c}</th>" for c in columns)
    rows = []
    if payload["baseline_validation_accuracy"] is not None:
        best = ' class="best"' if payload["best_round"] == 0 else ""
        accuracy = _fmt(payload["baseline_validation_accuracy"])
        rows.append(f'<tr{best}><td>0 (baseline)</td><td class="text">–</td><td>{accuracy}</td>{"<td>–</td>" * (len(columns) - 3)}</tr>')
    for r in lineage:
        clients = html.escape(", ".join(r.clients))
        outcomes = "".join(f"<td>{sum(m.get(o, 0) for m in r.client_metrics.values())}</td>" for o in (*OUTCOME_COLORS, "redacted"))
        if r.record is None:
            rows.append(
                f'<tr class="running"><td>{r.round} (in progress)</td><td class="text">{clients}</td>'
                f"<td>–</td><td>–</td>{outcomes}<td>–</td><td>–</td><td>–</td><td>–</td><td>–</td></tr>"
            )
            continue
        rec = r.record
        best = ' class="best"' if payload["best_round"] == r.round else ""
        clients += _screened_note(rec)
        rows.append(
            f'<tr{best}><td>{r.round}{" ★" if best else ""}</td><td class="text">{clients}</td>'
            f"<td>{_fmt(rec['validation_accuracy'])} ({rec['validation_correct']}/{rec['validation_total']})</td>"
            f"<td>{'yes' if rec['improved'] else 'no'}</td>{outcomes}"
            f"<td>{rec['prompt_chars']}</td><td>{rec['prompt_tokens']}</td><td>{rec['llm_calls']}</td>{_round_work(rec)}</tr>"
        )
    if not rows:
        return "<p>No round has finished yet.</p>"
    table = f'<table id="rounds"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div style="overflow-x: auto">{table}</div>'  # wider than a laptop screen: scrolls in its box


def _round_work(record: Mapping[str, Any]) -> str:
    """A finished round's update success rate (accepted/attempted steps) and LLM tokens."""
    rate = record.get("update_success_rate")
    metrics = record["client_metrics"].values()
    steps = f"{sum(m['accepted'] for m in metrics)}/{sum(len(m['steps']) for m in metrics)}"
    success = "–" if "update_success_rate" not in record else f"{_fmt(rate)} ({steps})"
    tokens = record.get("llm_tokens")
    used = "–" if tokens is None else f"{tokens['input']} / {tokens['output']}"
    return f"<td>{success}</td><td>{html.escape(used)}</td>"


def _screened_note(record: Mapping[str, Any]) -> str:
    """The uploads a finished round's screens left out, with the reasons (empty if none)."""
    lines = [f"{html.escape(cid)}: {html.escape(why)}" for cid, why in record.get("screened_out", {}).items()]
    if record.get("all_screened_out"):
        lines.append("every upload left out: the global prompt stayed as it was")
    return f'<div class="screened">screened out: {"<br>".join(lines)}</div>' if lines else ""


def _shown_prompt(prompt: str, screened_out: bool) -> str:
    """A client prompt for the page; a left-out one is cut at ``_SHOWN_SCREENED_CHARS``."""
    if not screened_out or len(prompt) <= _SHOWN_SCREENED_CHARS:
        return html.escape(prompt)
    rest = len(prompt) - _SHOWN_SCREENED_CHARS
    return f"{html.escape(prompt[:_SHOWN_SCREENED_CHARS])}<em>… ({rest} more characters)</em>"


def _round_section(r: _Round, best_round: int | None) -> str:
    title = f"Round {r.round}" + (" (in progress)" if r.record is None else "")
    badge = ' <span class="badge best-badge">best</span>' if r.record is not None and r.round == best_round else ""
    origin = "the initial prompt" if r.round == 1 else f"the global prompt of round {r.round - 1}"
    cards = []
    for cid in r.clients:
        if cid not in r.client_prompts:
            cards.append(
                f'<article class="pending"><div class="label">{html.escape(cid)}</div>'
                '<div class="prompt">not uploaded yet</div></article>'
            )
            continue
        m = r.client_metrics[cid]
        summary = f"{m['task']} · " + ", ".join(f"{m.get(o, 0)} {o}" for o in (*OUTCOME_COLORS, "redacted"))
        screened = (r.record or {}).get("screened_out", {}).get(cid)
        if screened:
            summary += f" · screened out: {screened}"
        kind = ' class="screened-out"' if screened else ""
        cards.append(
            f'<article{kind}><div class="label"><strong>{html.escape(cid)}</strong> · {html.escape(summary)}</div>'
            f'<div class="prompt">{_shown_prompt(r.client_prompts[cid], bool(screened))}</div></article>'
        )
    parts = [
        f'<section class="round" id="round-{r.round}"><h3>{title}{badge}</h3>',
        f'<div class="label">Started from {origin}</div><div class="prompt">{html.escape(r.start_prompt)}</div>',
        f'<div class="arrow">↓ sent to {len(r.clients)} client(s); their uploaded prompts:</div>',
        f'<div class="clients">{"".join(cards)}</div>',
    ]
    if r.global_prompt is None:
        parts.append('<div class="arrow">↓ not aggregated yet</div>')
    else:
        if r.record is None:
            about = "not evaluated yet"
        else:
            about = (
                f"{r.record['prompt_chars']} chars, {r.record['prompt_tokens']} tokens · "
                f"validation accuracy {_fmt(r.record['validation_accuracy'])}"
            )
        parts += [
            f'<div class="arrow">↓ aggregated into the global prompt of round {r.round}</div>',
            (
                f'<div class="global"><div class="label">Global prompt of round {r.round} · {html.escape(about)}</div>'
                f'<div class="prompt">{html.escape(r.global_prompt)}</div></div>'
            ),
            (
                f'<div class="diff"><div class="label">Changes from {origin}</div>'
                f'<div class="prompt">{_diff_or_unchanged(r.start_prompt, r.global_prompt)}</div></div>'
            ),
        ]
        if r.record is not None and "review" in r.record:
            parts.append(_review_line(r.record["review"]))
    parts.append("</section>\n")
    return "\n".join(parts)


def _review_line(review: Mapping[str, Any]) -> str:
    """A round's review decision, its note, and (if not kept) the score of the rejected merge."""
    text = f"Review: {review['decision']}"
    if review["decision"] != "approve":
        text += f" (the merged prompt scored {_fmt(review.get('candidate_validation_accuracy'))})"
    if review.get("note"):
        text += f" · note: {review['note']}"
    return f'<div class="label review">{html.escape(text)}</div>'


def _diff_or_unchanged(old: str, new: str) -> str:
    return word_diff_html(old, new) if old != new else "<em>unchanged</em>"
