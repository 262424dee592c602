"""What the command line shows: the live view of a run, its summary table, and errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, Self, TextIO

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..config import FedTextGradConfig
from ..models import LLMCallRecord
from ..replies import empty_reply_warnings
from ..runs import RunEvent
from .scores import (
    MERGE_LEGEND,
    ROUND_WORK_LEGEND,
    USAGE_LEGEND,
    client_scores_line,
    client_scores_table,
    merge_table,
    round_work_table,
    task_scores_table,
    tokens_line,
    usage_table,
)
from .status import file_lines, merge_line, models_line
from .stops import budget_note, early_stop_note

__all__ = ["EXIT_BAD_INPUT", "SIMULATED_BANNER", "RunView", "console", "errors", "fail", "print_summary", "warnings_shown"]

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
SIMULATED_BANNER = "[bold yellow]SIMULATED MODEL[/]: scripted offline replies, not a language model; scores show the pipeline works, not prompt quality."
EXIT_BAD_INPUT = 2


class _WarningLines(logging.Handler):
    """The package's log warnings as ``warning: ...`` lines on stderr, like ``error: ...``."""

    def emit(self, record: logging.LogRecord) -> None:
        errors.print(f"[yellow]warning:[/] {escape(self.format(record))}", highlight=False)


@contextmanager
def warnings_shown() -> Iterator[None]:
    """Within it, what the library logs at WARNING and above (an endpoint outage, empty
    replies, a Redis without persistence) is shown as ``warning:`` lines (the library only logs)."""
    logger = logging.getLogger("fedtextgrad_graph")
    handler, propagate = _WarningLines(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one error line (or a few) and exit with ``code``."""
    errors.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(code)


class RunView:
    """Renders run events with rich and appends them to ``events.jsonl`` in ``run_dir``
    (with no ``run_dir``, only renders them)."""

    def __init__(self, run_dir: Path | None, config: FedTextGradConfig) -> None:
        self._log: TextIO | None = None
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._log = (run_dir / "events.jsonl").open("a", encoding="utf-8")
        self._config = config
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),  # room for the description at 80 columns
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("starting", total=None)
        self._outcomes = {"accepted": 0, "rejected": 0, "malformed": 0, "blocked": 0, "unchanged": 0}
        self._stepped: set[tuple[str, int]] = set()  # (client, round) whose steps were shown live

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        if self._log is not None:
            self._log.close()

    def _write(self, event: RunEvent) -> None:
        if self._log is not None:
            self._log.write(event.to_json() + "\n")
            self._log.flush()

    def llm_call(self, record: LLMCallRecord) -> None:
        self._write(RunEvent("llm_call", record.__dict__))

    def event(self, event: RunEvent) -> None:
        self._write(event)
        d, say = event.data, self._progress.console.print
        if "client_id" in d and d["client_id"] is not None:
            d = {**d, "client_id": escape(str(d["client_id"]))}
        if event.kind == "resumed":
            self._progress.update(self._task, description=f"round {d['round']} (resumed)")
            say(f"resuming in round {d['round']}")
        elif event.kind == "round_started":
            steps = len(d["clients"]) * self._config.client.local_steps
            self._outcomes = dict.fromkeys(self._outcomes, 0)
            self._progress.reset(self._task, total=steps, description=f"round {d['round']} local steps")
            say(f"[bold]round {d['round']}[/]: clients {', '.join(d['clients'])}")
        elif event.kind == "local_step":
            self._local_step(d)
        elif event.kind == "client_finished":
            if (d["client_id"], d["round"]) not in self._stepped:
                for step in d["steps"]:  # a remote site: its steps arrive with its upload
                    self._local_step({**step, "client_id": d["client_id"]})
            say(
                f"  {d['client_id']} uploaded its prompt: {d['accepted']} accepted, {d['rejected']} rejected, "
                f"{d['malformed']} malformed, {d.get('blocked', 0)} blocked, {d.get('unchanged', 0)} unchanged; "
                f"{d.get('redacted', 0)} redacted by the upload guard; "
                f"{d['llm_calls']} LLM calls"
            )
        elif event.kind == "client_dropped":
            say(f"  [yellow]{d['client_id']} dropped this round[/]: {escape(d['reason'])}")
        elif event.kind == "paused" and d.get("kind") == "review":
            say(f"[bold yellow]round {d['round']} awaits review[/]: the merged prompt scored {d['candidate_score']:.3f}")
        elif event.kind == "reviewed":
            note = f": {escape(d['note'])}" if d.get("note") else ""
            say(f"  review: {d['decision']}{note}")
        elif event.kind == "paused":
            say(f"[bold yellow]round {d['round']} paused[/]: {len(d['arrived'])} update(s), the quorum needs {d['required']}")
        elif event.kind == "waiting_for_site":
            say(f"  waiting for site {d['client_id']} to connect")
        elif event.kind == "site_connected":
            say(f"  site {d['client_id']} connected (node {d['node_id']})")
        elif event.kind == "evaluated":
            for cid, reason in d.get("dropped", {}).items():
                say(f"  [yellow]{escape(cid)} left out of scoring[/]: {escape(reason)}")
            if d.get("client_validation"):
                say("  validation by client: " + escape(client_scores_line(d["client_validation"])), highlight=False)
            if len(d.get("validation_by_task", {})) > 1:
                say("  validation by task: " + escape(client_scores_line(d["validation_by_task"])), highlight=False)
        elif event.kind == "screened":
            for cid, reason in d["screened_out"].items():
                say(f"  [yellow]{escape(cid)} screened out[/]: {escape(reason)}")
        elif event.kind == "aggregated":
            if d["all_screened_out"]:
                say("  [bold yellow]every upload screened out[/]: the global prompt stays as it was")
            else:
                say(f"  aggregated ({d['aggregation']}): {d['prompt_chars']} chars, {d['prompt_tokens']} tokens")
                if d.get("merge"):
                    say("  " + escape(merge_line(d["merge"])), highlight=False)
        elif event.kind == "round_finished":
            best = " [green](new best)[/]" if d["new_best"] else ""
            stop = f"; stopping: {d['stop_reason']}" if d["stop_reason"] else ""
            say(f"  validation accuracy {d['validation_accuracy']:.3f}{best}{stop}")
            if d.get("llm_tokens") is not None:
                rate = d.get("update_success_rate")
                accepted = "no local step" if rate is None else f"{rate:.2f} of local steps accepted"
                say(f"  {accepted}; LLM tokens {d['llm_tokens']['input']} in, {d['llm_tokens']['output']} out", highlight=False)
        elif event.kind == "test_finished":
            say(f"test accuracy of the best prompt: {d['test_accuracy']:.3f}")

    def _local_step(self, d: dict[str, Any]) -> None:
        self._stepped.add((d["client_id"], d["round"]))
        self._outcomes[d["outcome"]] += 1
        self._progress.advance(self._task)
        after = "" if d["updated_accuracy"] is None else f" -> {d['updated_accuracy']:.2f}"
        self._progress.console.print(
            f"  {d['client_id']} step {d['step']}/{self._config.client.local_steps}: {d['outcome']}"
            f" (batch accuracy {d['train_accuracy']:.2f}{after})" + _guarded(d)
        )
        desc = ", ".join(f"{v} {k}" for k, v in self._outcomes.items() if v)
        self._progress.update(self._task, description=f"round {d['round']} steps: {desc}")


def _guarded(step: dict[str, Any]) -> str:
    """What the upload guard caught in a step's new prompt (counts by kind), if anything."""
    caught = step.get("guard_caught") or {}
    if not caught:
        return ""
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(caught.items()))
    done = "redacted" if step.get("redacted") else "blocked"
    return f" [yellow]upload guard: {escape(kinds)} {done}[/]"


SUMMARY_COLUMNS = ("round", "updates", "val acc", "acc", "rej", "malf", "blk", "red", "unch", "chars", "tokens", "calls")
SUMMARY_LEGEND = (
    "updates: received/selected; acc, rej, malf, unch: local steps accepted, rejected, malformed, unchanged; "
    "blk, red: steps whose prompt the upload guard blocked, redacted; chars, tokens: the global prompt's size; calls: LLM calls"
)


def print_table(table: Table, legend: str) -> None:
    """``table`` and its legend; on a console too narrow for it, one line per row instead, each
    cell named by its column, so nothing is cut."""
    natural = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        console.print(legend, style="dim", highlight=False, markup=False)
        return
    headers = [str(column.header) for column in table.columns]
    cells = [list(column.cells) for column in table.columns]
    if table.title:
        console.print(table.title, highlight=False, markup=False)
    for row in zip(*cells, strict=True):
        first, *rest = (f"{header} {cell}" for header, cell in zip(headers, row, strict=True))
        console.print(f"  {first}: " + ", ".join(rest), highlight=False, markup=False)
    console.print(legend, style="dim", highlight=False, markup=False)


def print_summary(payload: dict[str, Any], run_dir: Path, *, export_command: str | None = None) -> None:
    """The per-round table of a run, its stop reason and where its files are (only files that
    exist; ``export_command`` prints a best prompt not in the run folder, by default
    ``fedtextgrad-graph export RUN_ID``)."""
    table = Table(title=f"run {payload['run_id']} ({payload['status']})", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))
    for column in SUMMARY_COLUMNS:
        table.add_column(column, justify="right")
    for r in payload["history"]:
        metrics = r["client_metrics"].values()
        table.add_row(
            str(r["round"]),
            f"{len(r['client_metrics'])}/{len(r['clients'])}",
            f"{r['validation_accuracy']:.3f}",
            *(str(sum(m.get(k, 0) for m in metrics)) for k in ("accepted", "rejected", "malformed", "blocked", "redacted", "unchanged")),
            str(r["prompt_chars"]),
            str(r["prompt_tokens"]),
            str(r["llm_calls"]),
        )
    print_table(table, SUMMARY_LEGEND)
    by_client = client_scores_table(payload["history"], payload.get("client_test"))
    if by_client is not None:
        console.print(by_client)
    if (by_task := task_scores_table(payload)) is not None:
        console.print(by_task)
    if (work := round_work_table(payload["history"])) is not None:
        print_table(work, ROUND_WORK_LEGEND)
    if (merges := merge_table(payload["history"])) is not None:
        print_table(merges, MERGE_LEGEND)
    if (usage := usage_table(payload)) is not None:
        print_table(usage, USAGE_LEGEND)
    if payload["simulated"]:
        console.print(SIMULATED_BANNER)
    console.print(models_line(payload), highlight=False, markup=False)
    if (tokens := tokens_line(payload)) is not None:
        console.print(tokens, highlight=False, markup=False)
    test, best = payload["test_accuracy"], payload["best_validation_accuracy"]
    console.print(
        f"stop reason: {payload['stop_reason'] or 'none yet (the run has not finished)'}; "
        + ("no best round yet" if best is None else f"best round {payload['best_round']} (validation {best:.3f})")
        + ("" if test is None else f"; test {test:.3f}")
    )
    if (note := early_stop_note(payload)) is not None:
        console.print(note, highlight=False, markup=False)
    if payload["stop_reason"] == "budget":
        console.print(budget_note(payload), highlight=False, markup=False)
    for r in payload["history"]:
        for cid, reason in r.get("dropped", {}).items():
            console.print(f"round {r['round']}: {escape(cid)} dropped ({escape(reason)})")
        for cid, reason in r.get("screened_out", {}).items():
            console.print(f"round {r['round']}: {escape(cid)} screened out ({escape(reason)})")
        if r.get("all_screened_out"):
            console.print(f"round {r['round']}: every upload screened out; the global prompt stayed as it was")
        if r.get("merge", {}).get("missing"):
            missing = " | ".join(r["merge"]["missing"])
            console.print(f"round {r['round']}: the merge misses: {missing}", highlight=False, markup=False)
        if "review" in r:
            note = f": {r['review']['note']}" if r["review"].get("note") else ""
            console.print(f"round {r['round']}: review {r['review']['decision']}{note}", highlight=False, markup=False)
        for line in empty_reply_warnings(r["round"], r.get("empty_replies", {})):
            console.print(line, highlight=False, markup=False)
    lines = file_lines(payload, run_dir, export_command or f"fedtextgrad-graph export {payload['run_id']}")
    if lines:
        console.print("\n".join(lines), highlight=False, markup=False)


