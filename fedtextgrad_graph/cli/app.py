"""The ``fedtextgrad-graph`` command line: run, resume, status, export, report, draw, review."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from ..checkpoint import CheckpointError, RunLeaseHeld, RunLeaseLost, create_checkpointer, redacted_url, sqlite_url
from ..config import ConfigError, FedTextGradConfig, load_config, parse_config
from ..data import DataError
from ..run_ids import check_run_id
from ..runs import (
    BudgetSpent,
    RunAwaitingReview,
    RunExistsError,
    RunPaused,
    awaiting_review,
    latest_prompt,
    new_run_id,
    results_payload,
    run_status,
    saved_state,
    stream_run,
    write_run_files,
)
from ..server import FederationRuntime
from ..server.review import ReviewDecision, review_message
from ..transport import ClientTransport, TransportError
from .output import check_creatable_folder, check_writable_file, ensure_folder, output_failed, write_output
from .review import decision_from_options, show_review
from .run_folder import CHECKPOINT_FILE, recall_checkpoint, remember_checkpoint
from .signals import Interruption, cancel_on_sigterm
from .status import checkpoint_line, file_lines, models_line, progress_line
from .view import SIMULATED_BANNER, RunView, console, errors, fail, print_summary, warnings_shown

app = typer.Typer(
    name="fedtextgrad-graph",
    help="Federated prompt optimization with textual gradients (FedTextGrad) on LangGraph.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Model for every role: an init_chat_model string (openai:gpt-4o-mini) or 'simulated'."),
]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint for every role.")]
CHECKPOINT_ENV = "FEDTEXTGRAD_CHECKPOINT"
CheckpointOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        envvar=CHECKPOINT_ENV,
        show_envvar=True,
        help="Checkpoint URL: sqlite:///path, redis://[:password@]host:port/db, rediss://..., or memory://. "
        "Default: sqlite in RUNS_DIR/RUN_ID/checkpoint.sqlite. Set it in the environment to keep a password off the command line.",
    ),
]
SavedCheckpointOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        help=f"Checkpoint URL of the run. Default: the one its run folder remembers (a password comes from {CHECKPOINT_ENV}), "
        f"else {CHECKPOINT_ENV}, else RUNS_DIR/RUN_ID/checkpoint.sqlite.",
    ),
]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", help="Folder holding run directories (events, results).")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Folder the config's data paths are relative to.")]
SuperlinkOpt = Annotated[
    str | None,
    typer.Option("--superlink", help="Train on the Flower sites connected to this SuperLink (HOST:PORT).", rich_help_panel="Flower"),
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Plain HTTP to the SuperLink, no TLS (loopback and tests only).", rich_help_panel="Flower")
]
RootCertificatesOpt = Annotated[
    Path | None,
    typer.Option("--root-certificates", help="CA certificate (PEM) that signed the SuperLink's TLS certificate (default: the system's trusted CAs).", rich_help_panel="Flower"),
]
ServerSecretOpt = Annotated[
    Path | None,
    typer.Option(
        "--server-secret",
        help="The SuperLink's server secret (STATE_DIR/server.secret, written by 'superlink'): it lets this process run rounds there.",
        rich_help_panel="Flower",
    ),
]
DEFAULT_RUNS_DIR = Path("runs")
T = TypeVar("T")


def _show_version(value: bool) -> None:
    if value:
        console.print(f"fedtextgrad-graph {package_version('fedtextgrad-graph')}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Federated prompt optimization with textual gradients (FedTextGrad) on LangGraph."""


def _checkpoint_url(checkpoint: str | None, runs_dir: Path, run_id: str) -> str:
    return checkpoint or sqlite_url(runs_dir / run_id / "checkpoint.sqlite")


def _resume_hint(run_id: str, url: str, runs_dir: Path, verb: str = "resume", choices: str = "") -> str:
    """The command that resumes (or, with ``verb="review"``, reviews) this run, with the options
    it needs, then ``choices``; a URL with a password is never shown: the command reads it from
    the environment."""
    command = f"fedtextgrad-graph {verb} {run_id}"
    if runs_dir != DEFAULT_RUNS_DIR:
        command += f" --runs-dir {runs_dir}"
    if url != _checkpoint_url(None, runs_dir, run_id):
        if urlsplit(url).password is not None:
            placeholder = redacted_url(url, mask="PASSWORD")
            return f"{CHECKPOINT_ENV}='{placeholder}' {command}{choices}  (put the real password in place of PASSWORD)"
        if not _remembered(url, runs_dir / run_id):
            command += f" --checkpoint '{url}'"
    return command + choices


def _remembered(url: str, run_dir: Path) -> bool:
    """Whether ``run_dir`` remembers ``url`` as its checkpoint (so commands need no ``--checkpoint``)."""
    try:
        return recall_checkpoint(run_dir, url, env_name=CHECKPOINT_ENV) == url
    except CheckpointError:
        return False


def _remember(url: str, runs_dir: Path, run_id: str) -> None:
    """Record in the run folder where its checkpoint is (nothing for the default or ``memory://``)."""
    run_dir = runs_dir / run_id
    if url == _checkpoint_url(None, runs_dir, run_id):
        (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    elif urlsplit(url).scheme != "memory":
        remember_checkpoint(run_dir, url)


def _safe_run_id(run_id: str) -> str:
    try:
        return check_run_id(run_id)
    except ValueError as exc:
        fail(str(exc))


async def _execute(
    runtime: FederationRuntime,
    run_id: str,
    runs_dir: Path,
    url: str,
    *,
    resume: bool,
    review: ReviewDecision | None = None,
    resume_command: str | None = None,
) -> None:
    run_dir = runs_dir / run_id
    async with create_checkpointer(url) as checkpointer:
        _remember(url, runs_dir, run_id)  # before the first round: a killed run is found without --checkpoint
        hint = resume_command or _resume_hint(run_id, url, runs_dir)
        console.print(
            f"{'resuming' if resume else 'starting'} run [bold]{escape(run_id)}[/] (checkpoint {escape(redacted_url(url))})",
            highlight=False,
        )
        if runtime.models.simulated:
            console.print(SIMULATED_BANNER)
        interruption = Interruption()
        try:
            with cancel_on_sigterm(interruption), RunView(run_dir, runtime.config) as view:
                runtime.gateway.on_call = view.llm_call
                state = await stream_run(runtime, checkpointer, run_id, resume=resume, on_event=view.event, review=review)
        except RunLeaseHeld as exc:
            fail(str(exc))
        except RunLeaseLost as exc:
            fail(str(exc), code=1)  # another process writes this run now: leave its results alone
        except RunExistsError:
            fail(f"run {run_id!r} already exists in {redacted_url(url)}; continue it with: {hint}")
        except (BudgetSpent, ConfigError) as exc:
            fail(str(exc))
        except TransportError as exc:
            fail(str(exc) + (f"\nonce that is fixed, resume the run with: {hint}" if resume else ""))
        except RunPaused as paused:
            partial = await saved_state(checkpointer, run_id)
            if partial is not None:
                _write_results(partial, runtime.config, run_id, run_dir)
            fail(f"{paused}\nthe run is paused; once enough clients can answer, resume it with: {hint}", code=1)
        except RunAwaitingReview as paused:
            partial = await saved_state(checkpointer, run_id)
            if partial is not None:
                _write_results(partial, runtime.config, run_id, run_dir)
            console.print(f"{paused}; review it with: {_resume_hint(run_id, url, runs_dir, 'review')}", highlight=False, markup=False)
            return
        except (KeyboardInterrupt, asyncio.CancelledError):
            errors.print(f"interrupted; resume with: {hint}", markup=False)
            raise typer.Exit(interruption.exit_code) from None
        except Exception as exc:  # noqa: BLE001 - whatever stopped the run: keep what finished, say how to resume
            try:
                partial = await saved_state(checkpointer, run_id)
            except CheckpointError:
                partial = None  # the store itself failed; results.json keeps its last version
            if partial is not None:
                _write_results(partial, runtime.config, run_id, run_dir)
            fail(f"run {run_id} stopped: {exc}\nresume it with: {hint}", code=1)
        finally:
            await runtime.aclose()
    print_summary(_write_results(state, runtime.config, run_id, run_dir), run_dir)


def _runtime(config: FedTextGradConfig, transport: ClientTransport | None = None) -> FederationRuntime:
    try:
        return FederationRuntime.create(config, transport=transport)
    except (ConfigError, DataError) as exc:
        fail(str(exc))


def execute_run(
    config: FedTextGradConfig,
    *,
    run_id: str,
    runs_dir: Path,
    checkpoint: str | None,
    resume: bool,
    transport: ClientTransport | None = None,
    review: ReviewDecision | None = None,
    resume_command: str | None = None,
) -> None:
    """Run (or resume) ``run_id`` with the live view, writing its run folder; exits the
    process with a message on bad input (2) or a stopped run (1). A run that comes to a
    review pause ends normally (0). ``review`` continues a run awaiting review.
    ``resume_command`` replaces the ``resume`` command shown when the run stops."""
    runtime = _runtime(config, transport)  # data files and model settings fail here, before any LLM call
    check_creatable_folder(runs_dir / run_id, "--runs-dir")  # so does a run folder that cannot be written
    url = _checkpoint_url(checkpoint, runs_dir, run_id)
    with warnings_shown():
        _run_async(_execute(runtime, run_id, runs_dir, url, resume=resume, review=review, resume_command=resume_command))


def _flower_settings(
    config: FedTextGradConfig, superlink: str | None, insecure: bool, root_certificates: Path | None, server_secret: Path | None
) -> FedTextGradConfig:
    """``config`` reaching Flower sites through ``superlink`` (unchanged without one)."""
    if superlink is None:
        if insecure or root_certificates or server_secret:
            fail("--insecure, --root-certificates and --server-secret go with --superlink HOST:PORT")
        return config
    if insecure and root_certificates:
        fail("choose --insecure (plain HTTP) or --root-certificates (TLS), not both")
    for option, path in (("--root-certificates", root_certificates), ("--server-secret", server_secret)):
        if path is not None and not path.is_file():
            fail(f"{option}: {path} is not a file")
    settings = config.transport.flower.model_copy(
        update={
            "superlink": superlink,
            "insecure": insecure,
            "root_certificates": str(root_certificates.resolve()) if root_certificates else None,
            "server_secret": str(server_secret.resolve()) if server_secret else None,
        }
    )
    return config.with_flower(settings)


def _write_results(state: dict[str, Any], config: FedTextGradConfig, run_id: str, run_dir: Path) -> dict[str, Any]:
    payload = results_payload(state, run_id=run_id)
    try:
        write_run_files(run_dir, payload)
    except OSError as exc:  # the checkpoint still holds the run: status and export read it there
        output_failed("--runs-dir", run_dir, exc)
    return payload


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except CheckpointError as exc:
        fail(str(exc))
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
    superlink: SuperlinkOpt = None,
    insecure: InsecureOpt = False,
    root_certificates: RootCertificatesOpt = None,
    server_secret: ServerSecretOpt = None,
) -> None:
    """Start a federated prompt-optimization run (clients in this process, or Flower sites)."""
    try:
        cfg = load_config(config, data_dir=data_dir).with_model_override(model, base_url)
    except ConfigError as exc:
        fail(str(exc))
    cfg = _flower_settings(cfg, superlink, insecure, root_certificates, server_secret)
    run_id = _safe_run_id(run_id) if run_id is not None else new_run_id(cfg.run.name)
    execute_run(cfg, run_id=run_id, runs_dir=runs_dir, checkpoint=checkpoint, resume=False)


async def _saved(run_id: str, url: str) -> dict[str, Any]:
    async with create_checkpointer(url, read_only=True) as checkpointer:
        state = await saved_state(checkpointer, run_id)
    if state is None:
        fail(f"no run {run_id!r} in checkpoint {redacted_url(url)}")
    return state


def _existing_url(checkpoint: str | None, runs_dir: Path, run_id: str) -> str:
    """The checkpoint of a saved run: ``--checkpoint``, else the one its run folder remembers,
    else ``FEDTEXTGRAD_CHECKPOINT``, else the default SQLite file in the run folder."""
    _safe_run_id(run_id)
    if checkpoint is not None:
        return checkpoint
    env_url = os.environ.get(CHECKPOINT_ENV) or None
    try:
        remembered = recall_checkpoint(runs_dir / run_id, env_url, env_name=CHECKPOINT_ENV)
    except CheckpointError as exc:
        fail(f"run {run_id!r}: {exc}")
    url = remembered or env_url
    if url is not None:
        return url
    if not (runs_dir / run_id / "checkpoint.sqlite").exists():
        fail(f"no checkpoint for run {run_id!r} in {runs_dir / run_id}; pass --checkpoint URL or --runs-dir DIR")
    return _checkpoint_url(None, runs_dir, run_id)


def saved_run(run_id: str, runs_dir: Path, checkpoint: str | None) -> tuple[str, dict[str, Any], FedTextGradConfig]:
    """A saved run's checkpoint URL, state and config (exits with a message if there is none)."""
    url = _existing_url(checkpoint, runs_dir, run_id)
    state = _run_async(_saved(run_id, url))
    return url, state, _saved_config(state, run_id)


def _saved_payload(state: dict[str, Any], run_id: str) -> dict[str, Any]:
    """``results.json`` content of a saved run: the models its rounds recorded."""
    return results_payload(state, run_id=run_id)


def _saved_config(state: dict[str, Any], run_id: str) -> FedTextGradConfig:
    try:
        return parse_config(state["run_config"], source=f"saved config of run {run_id}")
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="Id of the run to continue.")],
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    checkpoint: SavedCheckpointOpt = None,
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
    superlink: SuperlinkOpt = None,
    insecure: InsecureOpt = False,
    root_certificates: RootCertificatesOpt = None,
    server_secret: ServerSecretOpt = None,
    max_usd: Annotated[float | None, typer.Option("--max-usd", help="Raise the run's [budget] max_usd (saved with the run).")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Raise the run's [budget] max_tokens (saved with the run).")] = None,
) -> None:
    """Continue an interrupted run from its last checkpoint (or one stopped by its budget,
    with a raised budget)."""
    _continue_run(
        run_id, model, base_url, checkpoint, data_dir, runs_dir, superlink, insecure, root_certificates, server_secret, max_usd=max_usd, max_tokens=max_tokens
    )


def _continue_run(
    run_id: str,
    model: str | None,
    base_url: str | None,
    checkpoint: str | None,
    data_dir: Path | None,
    runs_dir: Path,
    superlink: str | None,
    insecure: bool,
    root_certificates: Path | None,
    server_secret: Path | None,
    *,
    review: ReviewDecision | None = None,
    max_usd: float | None = None,
    max_tokens: int | None = None,
) -> None:
    """``resume`` (and ``review`` with a decision): continue a saved run with these options."""
    url, state, cfg = saved_run(run_id, runs_dir, checkpoint)
    pending = awaiting_review(state)
    if pending is None and review is not None:
        fail(f"run {run_id} is not awaiting review (status: {run_status(state)})")
    if pending is not None and review is None:
        fail(
            f"{review_message(pending)}; see it with: {_resume_hint(run_id, url, runs_dir, 'review')}, "
            "then add --approve, --edit FILE or --reject"
        )
    if data_dir is not None:
        cfg = cfg.with_data_dir(data_dir)
    try:
        cfg = cfg.with_model_override(model, base_url).with_budget(max_usd=max_usd, max_tokens=max_tokens)
    except ConfigError as exc:
        fail(str(exc))
    if model or base_url or data_dir:
        console.print("note: --model, --base-url and --data-dir apply to this resume only; they are not saved with the run")
    cfg = _flower_settings(cfg, superlink, insecure, root_certificates, server_secret)
    if run_status(state) == "completed":
        console.print(f"run {run_id} already completed")
        print_summary(_write_results(state, cfg, run_id, runs_dir / run_id), runs_dir / run_id)
        return
    execute_run(cfg, run_id=run_id, runs_dir=runs_dir, checkpoint=url, resume=True, review=review)


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    checkpoint: SavedCheckpointOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Show a run's progress from its checkpoint."""
    url = _existing_url(checkpoint, runs_dir, run_id)
    state = _run_async(_saved(run_id, url))
    payload = _saved_payload(state, run_id)
    export_command = _resume_hint(run_id, url, runs_dir, "export")
    lines = [progress_line(payload, state, resume_command=_resume_hint(run_id, url, runs_dir)), checkpoint_line(redacted_url(url))]
    if not payload["history"]:  # else the summary shows the models and files
        lines += [models_line(payload), *file_lines(payload, runs_dir / run_id, export_command)]
    console.print("\n".join(lines), highlight=False, markup=False)
    if payload["history"]:
        print_summary(payload, runs_dir / run_id, export_command=export_command)
    if payload["pending_review"]:
        hint = _resume_hint(run_id, url, runs_dir, "review")
        console.print(f"{review_message(payload['pending_review'])}; review it with: {hint}", highlight=False, markup=False)


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    which: Annotated[str, typer.Option("--which", help="best (the highest validation accuracy) or latest (the newest global prompt).")] = "best",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    checkpoint: SavedCheckpointOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Print (or write) a run's best or latest global prompt."""
    if which not in ("best", "latest"):
        fail(f"--which must be 'best' or 'latest', not {which!r}")
    if output is not None:
        check_writable_file(output, "--output")
    url = _existing_url(checkpoint, runs_dir, run_id)
    state = _run_async(_saved(run_id, url))
    prompt = state.get("best_prompt") if which == "best" else latest_prompt(state)
    if not prompt:
        fail(f"run {run_id} has no {which} prompt yet (no round has finished)")
    if _saved_payload(state, run_id)["simulated"]:
        errors.print("note: this prompt comes from a run with the SIMULATED model")
    if output is None:
        sys.stdout.write(prompt + "\n")
    else:
        write_output(output, prompt + "\n", "--output")
        errors.print(f"wrote the {which} prompt of {run_id} to {output}")


@app.command(context_settings={"allow_extra_args": True})
def draw(
    ctx: typer.Context,
    picture_format: Annotated[
        str, typer.Option("--format", help="mermaid (text), png (image) or ascii (text art).")
    ] = "mermaid",
    xray: Annotated[
        bool, typer.Option("--xray/--no-xray", help="Expand client_optimizer into the client subgraph (a flag, no value).")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here; mermaid and ascii default to stdout, png to ./round_graph.png."),
    ] = None,
) -> None:
    """Draw the round graph offline, top to bottom: Mermaid text, a PNG (Graphviz) or ASCII art.

    The round graph is the same for every run, so draw takes no run id.
    """
    from ..drawing import DrawingDependencyError, round_graph_ascii, round_graph_mermaid, round_graph_png

    if ctx.args:
        fail(
            f"draw takes no run id or other argument (got {' '.join(ctx.args)!r}): it draws the round graph, "
            "which is the same for every run; for one run's rounds use: fedtextgrad-graph report RUN_ID"
        )
    if picture_format not in ("mermaid", "png", "ascii"):
        fail(f"--format must be 'mermaid', 'png' or 'ascii', not {picture_format!r}")
    if output is not None or picture_format == "png":
        check_writable_file(output or Path("round_graph.png"), "--output")
    try:
        if picture_format == "png":
            path = output or Path("round_graph.png")
            write_output(path, round_graph_png(xray=xray), "--output")
            console.print(f"wrote the round graph to {path.resolve()}", highlight=False, markup=False)
            return
        text = round_graph_mermaid(xray=xray) if picture_format == "mermaid" else round_graph_ascii(xray=xray)
    except DrawingDependencyError as exc:
        fail(str(exc))
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        write_output(output, text, "--output")
        console.print(f"wrote the round graph to {output.resolve()}", highlight=False, markup=False)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    out: Annotated[
        Path | None, typer.Option("--output", "-o", "--out", help="Report folder. Default: RUNS_DIR/RUN_ID/report.")
    ] = None,
    checkpoint: SavedCheckpointOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Write PNG plots and a self-contained HTML page about a run (finished or not)."""
    from ..report import write_report

    url = _existing_url(checkpoint, runs_dir, run_id)
    folder = ensure_folder(out or runs_dir / run_id / "report", "--output")
    state = _run_async(_saved(run_id, url))
    resume_command = _resume_hint(run_id, url, runs_dir, "review" if awaiting_review(state) else "resume")
    try:
        files = write_report(state, folder, run_id=run_id, resume_command=resume_command)
    except ImportError as exc:
        fail(str(exc))
    except OSError as exc:
        output_failed("--output", Path(exc.filename) if exc.filename else folder, exc)
    for plot in files.plots:
        console.print(f"plot: {plot}", highlight=False, markup=False)
    console.print(f"report: {files.html}", highlight=False, markup=False)


@app.command()
def review(
    run_id: Annotated[str, typer.Argument(help="Id of the run awaiting review.")],
    approve: Annotated[bool, typer.Option("--approve", help="Keep the merged prompt and continue the run.")] = False,
    edit: Annotated[
        Path | None, typer.Option("--edit", help="Continue with this file's text as the global prompt (scored on validation).")
    ] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Keep the current global prompt and continue the run.")] = False,
    note: Annotated[str | None, typer.Option("--note", help="A note recorded with the decision.")] = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    checkpoint: SavedCheckpointOpt = None,
    data_dir: DataDirOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
    superlink: SuperlinkOpt = None,
    insecure: InsecureOpt = False,
    root_certificates: RootCertificatesOpt = None,
    server_secret: ServerSecretOpt = None,
) -> None:
    """Show the merged prompt awaiting review (diff and scores); with --approve, --edit FILE or --reject, continue the run from there."""
    decision = decision_from_options(approve, edit, reject, note)
    if decision is None:
        url, state, _cfg = saved_run(run_id, runs_dir, checkpoint)
        pending = awaiting_review(state)
        if pending is None:
            fail(f"run {run_id} is not awaiting review (status: {run_status(state)})")
        show_review(run_id, pending)
        hint = _resume_hint(run_id, url, runs_dir, "review", " --approve | --edit FILE | --reject [--note TEXT]")
        console.print(f"\ncontinue with: {hint}", highlight=False, markup=False)
        return
    _continue_run(
        run_id, model, base_url, checkpoint, data_dir, runs_dir, superlink, insecure, root_certificates, server_secret, review=decision
    )
