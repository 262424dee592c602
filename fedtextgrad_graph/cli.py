"""The ``fedtextgrad-graph`` command line: run, resume, status, export."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from collections.abc import Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .checkpoint import CheckpointError, create_checkpointer, redacted_url, sqlite_url
from .config import ConfigError, FedTextGradConfig, load_config, parse_config
from .data import DataError
from .models import LLMCallRecord, ModelRouter
from .runs import (
    RunEvent,
    RunExistsError,
    new_run_id,
    results_payload,
    run_status,
    saved_state,
    stream_run,
    write_run_files,
)
from .runtime import FederationRuntime

app = typer.Typer(
    name="fedtextgrad-graph",
    help="Federated prompt optimization with textual gradients (FedTextGrad) on LangGraph.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Model for every role: an init_chat_model string (openai:gpt-4o-mini) or 'simulated'."),
]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint for every role.")]
CheckpointOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        help="Checkpoint URL: sqlite:///path, redis://[:password@]host:port/db, rediss://..., or memory://. "
        "Default: sqlite in RUNS_DIR/RUN_ID/checkpoint.sqlite.",
    ),
]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories (events, results).")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Folder the config's data paths are relative to.")]
DEFAULT_RUNS_DIR = Path("runs")
SIMULATED_BANNER = "[bold yellow]SIMULATED MODEL[/]: scripted offline replies, not a language model; scores show the pipeline works, not prompt quality."
EXIT_BAD_INPUT = 2
T = TypeVar("T")


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    errors.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(code)


def _checkpoint_url(checkpoint: str | None, runs_dir: Path, run_id: str) -> str:
    return checkpoint or sqlite_url(runs_dir / run_id / "checkpoint.sqlite")


def _resume_hint(run_id: str, url: str, runs_dir: Path) -> str:
    """The command that resumes this run, with the options it needs."""
    command = f"fedtextgrad-graph resume {run_id}"
    if runs_dir != DEFAULT_RUNS_DIR:
        command += f" --runs-dir {runs_dir}"
    if url != _checkpoint_url(None, runs_dir, run_id):
        command += f" --checkpoint '{redacted_url(url)}'"
    return command


class _RunView:
    """Renders run events with rich and appends them to ``events.jsonl``."""

    def __init__(self, run_dir: Path, config: FedTextGradConfig) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self._log = (run_dir / "events.jsonl").open("a", encoding="utf-8")
        self._config = config
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("starting", total=None)
        self._outcomes = {"accepted": 0, "rejected": 0, "malformed": 0}

    def __enter__(self) -> _RunView:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        self._log.close()

    def _write(self, event: RunEvent) -> None:
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
            self._outcomes[d["outcome"]] += 1
            self._progress.advance(self._task)
            after = "" if d["updated_accuracy"] is None else f" -> {d['updated_accuracy']:.2f}"
            say(
                f"  {d['client_id']} step {d['step']}/{self._config.client.local_steps}: {d['outcome']}"
                f" (batch accuracy {d['train_accuracy']:.2f}{after})"
            )
            desc = ", ".join(f"{k} {v}" for k, v in self._outcomes.items())
            self._progress.update(self._task, description=f"round {d['round']} local steps ({desc})")
        elif event.kind == "client_finished":
            say(
                f"  {d['client_id']} uploaded its prompt: {d['accepted']} accepted, {d['rejected']} rejected, "
                f"{d['malformed']} malformed, {d['llm_calls']} LLM calls"
            )
        elif event.kind == "aggregated":
            say(f"  aggregated ({d['aggregation']}): {d['prompt_chars']} chars, {d['prompt_tokens']} tokens")
        elif event.kind == "round_finished":
            best = " [green](new best)[/]" if d["new_best"] else ""
            stop = f"; stopping: {d['stop_reason']}" if d["stop_reason"] else ""
            say(f"  validation accuracy {d['validation_accuracy']:.3f}{best}{stop}")
        elif event.kind == "test_finished":
            say(f"test accuracy of the best prompt: {d['test_accuracy']:.3f}")


def _summary(payload: dict[str, Any], run_dir: Path) -> None:
    table = Table(title=f"run {payload['run_id']} ({payload['status']})")
    for column in ("round", "val acc", "accepted", "rejected", "malformed", "prompt chars", "tokens", "LLM calls"):
        table.add_column(column, justify="right")
    for r in payload["history"]:
        metrics = r["client_metrics"].values()
        table.add_row(
            str(r["round"]),
            f"{r['validation_accuracy']:.3f}",
            *(str(sum(m[k] for m in metrics)) for k in ("accepted", "rejected", "malformed")),
            str(r["prompt_chars"]),
            str(r["prompt_tokens"]),
            str(r["llm_calls"]),
        )
    console.print(table)
    if payload["simulated"]:
        console.print(SIMULATED_BANNER)
    test = payload["test_accuracy"]
    console.print(
        f"stop reason: {payload['stop_reason']}; best round {payload['best_round']} "
        f"(validation {payload['best_validation_accuracy']:.3f})"
        + ("" if test is None else f"; test {test:.3f}")
    )
    console.print(f"results: {run_dir / 'results.json'}\nbest prompt: {run_dir / 'best_prompt.txt'}")


async def _execute(runtime: FederationRuntime, run_id: str, runs_dir: Path, url: str, *, resume: bool) -> None:
    run_dir = runs_dir / run_id
    hint = _resume_hint(run_id, url, runs_dir)
    async with create_checkpointer(url) as checkpointer:
        console.print(
            f"{'resuming' if resume else 'starting'} run [bold]{escape(run_id)}[/] (checkpoint {escape(redacted_url(url))})",
            highlight=False,
        )
        if runtime.models.simulated:
            console.print(SIMULATED_BANNER)
        try:
            with _RunView(run_dir, runtime.config) as view:
                runtime.gateway.on_call = view.llm_call
                state = await stream_run(runtime, checkpointer, run_id, resume=resume, on_event=view.event)
        except RunExistsError:
            _fail(f"run {run_id!r} already exists in {redacted_url(url)}; continue it with: {hint}")
        except (KeyboardInterrupt, asyncio.CancelledError):
            errors.print(f"interrupted; resume with: {hint}", markup=False)
            raise typer.Exit(130) from None
        except Exception as exc:
            try:
                partial = await saved_state(checkpointer, run_id)
            except CheckpointError:
                partial = None  # the store itself failed; results.json keeps its last version
            if partial is not None:
                _write_results(partial, runtime.config, run_id, run_dir)
            _fail(f"run {run_id} stopped: {exc}\nresume it with: {hint}", code=1)
        finally:
            runtime.close()
    _summary(_write_results(state, runtime.config, run_id, run_dir), run_dir)


def _runtime(config: FedTextGradConfig) -> FederationRuntime:
    try:
        return FederationRuntime.create(config)
    except (ConfigError, DataError) as exc:
        _fail(str(exc))


def _write_results(state: dict[str, Any], config: FedTextGradConfig, run_id: str, run_dir: Path) -> dict[str, Any]:
    payload = results_payload(state, run_id=run_id, models=ModelRouter(config).names())
    write_run_files(run_dir, payload)
    return payload


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except CheckpointError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        errors.print("interrupted; the run can be resumed from its last checkpoint")
        raise typer.Exit(130) from None


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Run configuration (TOML).")],
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    checkpoint: CheckpointOpt = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id (the checkpoint thread id).")] = None,
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Start a federated prompt-optimization run."""
    try:
        cfg = load_config(config, data_dir=data_dir).with_model_override(model, base_url)
    except ConfigError as exc:
        _fail(str(exc))
    runtime = _runtime(cfg)  # data files and model settings fail here, before any checkpoint or LLM call
    run_id = run_id or new_run_id(cfg.run.name)
    _run_async(_execute(runtime, run_id, runs_dir, _checkpoint_url(checkpoint, runs_dir, run_id), resume=False))


async def _saved(run_id: str, url: str) -> dict[str, Any]:
    async with create_checkpointer(url) as checkpointer:
        state = await saved_state(checkpointer, run_id)
    if state is None:
        _fail(f"no run {run_id!r} in checkpoint {url}")
    return state


def _existing_url(checkpoint: str | None, runs_dir: Path, run_id: str) -> str:
    if checkpoint is None and not (runs_dir / run_id / "checkpoint.sqlite").exists():
        _fail(f"no checkpoint for run {run_id!r} in {runs_dir / run_id}; pass --checkpoint URL or --runs-dir DIR")
    return _checkpoint_url(checkpoint, runs_dir, run_id)


def _saved_payload(state: dict[str, Any], run_id: str) -> dict[str, Any]:
    """``results.json`` content of a saved run, with the models of its saved config."""
    return results_payload(state, run_id=run_id, models=ModelRouter(_saved_config(state, run_id)).names())


def _saved_config(state: dict[str, Any], run_id: str) -> FedTextGradConfig:
    try:
        return parse_config(state["run_config"], source=f"saved config of run {run_id}")
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="Id of the run to continue.")],
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    checkpoint: CheckpointOpt = None,
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Continue an interrupted run from its last checkpoint."""
    url = _existing_url(checkpoint, runs_dir, run_id)
    state = _run_async(_saved(run_id, url))
    cfg = _saved_config(state, run_id)
    if data_dir is not None:
        cfg = cfg.with_data_dir(data_dir)
    if model or base_url or data_dir:
        console.print("note: --model, --base-url and --data-dir apply to this resume only; they are not saved with the run")
    cfg = cfg.with_model_override(model, base_url)
    if run_status(state) == "completed":
        console.print(f"run {run_id} already completed")
        _summary(_write_results(state, cfg, run_id, runs_dir / run_id), runs_dir / run_id)
        return
    _run_async(_execute(_runtime(cfg), run_id, runs_dir, url, resume=True))


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    checkpoint: CheckpointOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Show a run's progress from its checkpoint."""
    url = _existing_url(checkpoint, runs_dir, run_id)
    state = _run_async(_saved(run_id, url))
    payload = _saved_payload(state, run_id)
    console.print(
        f"run {run_id}: {payload['status']}, {payload['rounds']} round(s) finished, "
        f"stop reason: {payload['stop_reason']}, models: {json.dumps(payload['models'])}",
        highlight=False,
    )
    if payload["history"]:
        _summary(payload, runs_dir / run_id)


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    which: Annotated[str, typer.Option("--which", help="best or latest")] = "best",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    checkpoint: CheckpointOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Print (or write) a run's best or latest global prompt."""
    if which not in ("best", "latest"):
        _fail(f"--which must be 'best' or 'latest', not {which!r}")
    url = _existing_url(checkpoint, runs_dir, run_id)
    state = _run_async(_saved(run_id, url))
    prompt = state.get("best_prompt") if which == "best" else state.get("global_prompt")
    if not prompt:
        _fail(f"run {run_id} has no {which} prompt yet (no round has finished)")
    if _saved_payload(state, run_id)["simulated"]:
        errors.print("note: this prompt comes from a run with the SIMULATED model")
    if output is None:
        sys.stdout.write(prompt + "\n")
    else:
        output.write_text(prompt + "\n", encoding="utf-8")
        errors.print(f"wrote the {which} prompt of {run_id} to {output}")


@app.command()
def draw(
    picture_format: Annotated[
        str, typer.Option("--format", help="mermaid (text), png (image) or ascii (text art).")
    ] = "mermaid",
    xray: Annotated[bool, typer.Option("--xray", help="Expand client_optimizer into the client subgraph.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here; mermaid and ascii default to stdout, png to ./round_graph.png."),
    ] = None,
) -> None:
    """Draw the round graph offline: Mermaid text, a PNG (Graphviz) or ASCII art."""
    from .drawing import DrawingDependencyError, round_graph_ascii, round_graph_mermaid, round_graph_png

    if picture_format not in ("mermaid", "png", "ascii"):
        _fail(f"--format must be 'mermaid', 'png' or 'ascii', not {picture_format!r}")
    try:
        if picture_format == "png":
            path = output or Path("round_graph.png")
            path.write_bytes(round_graph_png(xray=xray))
            console.print(f"wrote the round graph to {path.resolve()}", highlight=False, markup=False)
            return
        text = round_graph_mermaid(xray=xray) if picture_format == "mermaid" else round_graph_ascii(xray=xray)
    except DrawingDependencyError as exc:
        _fail(str(exc))
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote the round graph to {output.resolve()}", highlight=False, markup=False)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    out: Annotated[Path | None, typer.Option("--out", help="Report folder. Default: RUNS_DIR/RUN_ID/report.")] = None,
    checkpoint: CheckpointOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Write PNG plots and a self-contained HTML page about a run (finished or not)."""
    from .report import write_report

    url = _existing_url(checkpoint, runs_dir, run_id)
    state = _run_async(_saved(run_id, url))
    models = _saved_payload(state, run_id)["models"]
    resume_command = _resume_hint(run_id, url, runs_dir)
    try:
        files = write_report(
            state, out or runs_dir / run_id / "report", run_id=run_id, models=models, resume_command=resume_command
        )
    except ImportError as exc:
        _fail(str(exc))
    for plot in files.plots:
        console.print(f"plot: {plot}", highlight=False, markup=False)
    console.print(f"report: {files.html}", highlight=False, markup=False)
