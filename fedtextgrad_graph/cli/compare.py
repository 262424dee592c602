"""``fedtextgrad-graph compare``: the centralized baseline and FedTextGrad with each strategy,
over seeds, on the same splits and models; writes ``RUNS_DIR/<comparison id>/comparison.json``.

Each arm and seed is an ordinary run in ``RUNS_DIR/<comparison id>/<run id>/`` (its own
results.json, events, checkpoint), so ``status``, ``report`` and ``export`` work on it with
``--runs-dir RUNS_DIR/<comparison id>``. Running the same command again skips finished runs
and resumes an interrupted one.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from ..checkpoint import CheckpointError, create_checkpointer, redacted_url, sqlite_url
from ..config import ConfigError, FedTextGradConfig, load_config
from ..data import DataError
from ..experiments import (
    ArmRun,
    ComparisonError,
    build_comparison,
    check_saved_config,
    comparison_id,
    parse_arms,
    plan_comparison,
)
from ..runs import results_payload, run_status, saved_state
from ..server import FederationRuntime
from .app import (
    CHECKPOINT_ENV,
    DEFAULT_RUNS_DIR,
    BaseUrlOpt,
    CheckpointOpt,
    DataDirOpt,
    ModelOpt,
    RunsDirOpt,
    app,
    execute_run,
)
from .comparison_table import print_comparison
from .output import check_creatable_folder, output_failed
from .view import SIMULATED_BANNER, console, fail

__all__ = ["compare"]

COMPARISON_FILE = "comparison.json"


def _rerun_command(
    config: Path,
    arms: str | None,
    seeds: int,
    model: str | None,
    base_url: str | None,
    data_dir: Path | None,
    checkpoint: str | None,
    runs_dir: Path,
) -> str:
    """This compare command, to run again after an interruption (a checkpoint password is
    never shown: the command reads it from the environment)."""
    words = ["fedtextgrad-graph", "compare", str(config)]
    for option, value in (("--arms", arms), ("--model", model), ("--base-url", base_url), ("--data-dir", data_dir)):
        if value is not None:
            words += [option, str(value)]
    if seeds != 1:
        words += ["--seeds", str(seeds)]
    if runs_dir != DEFAULT_RUNS_DIR:
        words += ["--runs-dir", str(runs_dir)]
    prefix = suffix = ""
    if checkpoint is not None:
        if urlsplit(checkpoint).password is not None:
            prefix = f"{CHECKPOINT_ENV}={shlex.quote(redacted_url(checkpoint, mask='PASSWORD'))} "
            suffix = " (put the real password in place of PASSWORD)"
        else:
            words += ["--checkpoint", checkpoint]
    return f"{prefix}{shlex.join(words)}{suffix} (the same compare command: finished runs are skipped)"


def _check_arms(plan: list[ArmRun]) -> None:
    """Load every arm's data and build its models now: bad input fails before any LLM call."""
    checked: set[str] = set()
    for run in plan:
        if run.arm in checked:
            continue
        checked.add(run.arm)
        try:
            runtime = FederationRuntime.create(run.config)
        except (ConfigError, DataError) as exc:
            fail(f"{run.arm} arm: {exc}")
        runtime.close()


async def _saved(url: str, run_id: str) -> dict[str, Any] | None:
    async with create_checkpointer(url, read_only=True) as checkpointer:
        return await saved_state(checkpointer, run_id)


def _saved_state(url: str, run_id: str, hint: str) -> dict[str, Any] | None:
    """The saved state of ``run_id`` (``None``: not started), or exit with one line."""
    try:
        return asyncio.run(_saved(url, run_id))
    except CheckpointError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"interrupted; resume with: {hint}", code=130)


def _write_comparison(folder: Path, comparison: dict[str, Any]) -> Path:
    path = folder / COMPARISON_FILE
    tmp = folder / f".{COMPARISON_FILE}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(comparison, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        output_failed("--runs-dir", path, exc)
    return path


def _load_config(config: Path, data_dir: Path | None, model: str | None, base_url: str | None) -> FedTextGradConfig:
    try:
        return load_config(config, data_dir=data_dir).with_model_override(model, base_url)
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def compare(
    config: Annotated[Path, typer.Argument(help="Run configuration (TOML) every arm starts from.")],
    arms: Annotated[
        str | None,
        typer.Option("--arms", help="Comma-separated arms: centralized and the aggregation strategies (default: all of them)."),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per arm: run.seed, run.seed + 1, ...")] = 1,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    data_dir: DataDirOpt = None,
    checkpoint: CheckpointOpt = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Compare a centralized TextGrad baseline with FedTextGrad under each aggregation strategy,
    over seeds, on the same splits and models; writes comparison.json. Run it again to
    continue an interrupted comparison."""
    if seeds < 1:
        fail(f"--seeds must be at least 1, not {seeds}")
    try:
        arm_names = None if arms is None else [arm.name for arm in parse_arms(arms)]
    except ValueError as exc:
        fail(f"--arms: {exc}")
    cfg = _load_config(config, data_dir, model, base_url)
    try:
        plan = plan_comparison(cfg, arms=arm_names, seeds=seeds)
    except ComparisonError as exc:
        fail(f"{config}: {exc}")
    except ConfigError as exc:
        fail(str(exc))
    if checkpoint is not None and urlsplit(checkpoint).scheme == "memory":
        fail("--checkpoint memory:// keeps nothing after each run; compare needs sqlite:///... or redis://... to collect and resume its runs")
    comparison = comparison_id(cfg)
    folder = runs_dir / comparison
    check_creatable_folder(folder, "--runs-dir")
    hint = _rerun_command(config, arms, seeds, model, base_url, data_dir, checkpoint, runs_dir)
    urls = {run.run_id: checkpoint or sqlite_url(folder / run.run_id / "checkpoint.sqlite") for run in plan}
    saved = {run.run_id: _saved_state(urls[run.run_id], run.run_id, hint) for run in plan}
    for run in plan:
        if (state := saved[run.run_id]) is not None:
            try:
                check_saved_config(run, state)
            except ComparisonError as exc:
                fail(str(exc))
    finished = {run_id for run_id, state in saved.items() if state is not None and run_status(state) == "completed"}
    _check_arms([run for run in plan if run.run_id not in finished])
    console.print(f"comparison [bold]{comparison}[/]: {len(plan)} runs in {folder}", highlight=False)
    for i, run in enumerate(plan, start=1):
        heading = f"[bold]{i}/{len(plan)}: arm {run.arm}, seed {run.seed}[/] (run {run.run_id})"
        if run.run_id in finished:
            console.print(f"{heading}: already completed, skipped", highlight=False)
            continue
        console.print(heading, highlight=False)
        resume = saved[run.run_id] is not None
        execute_run(run.config, run_id=run.run_id, runs_dir=folder, checkpoint=checkpoint, resume=resume, resume_command=hint)
    payloads: dict[str, list[dict[str, Any]]] = {}
    for run in plan:
        state = _saved_state(urls[run.run_id], run.run_id, hint)
        if state is not None:
            payloads.setdefault(run.arm, []).append(results_payload(state, run_id=run.run_id))
    result = build_comparison(comparison, payloads)
    path = _write_comparison(folder, result)
    console.print()
    print_comparison(result)
    if result["simulated"]:
        console.print(SIMULATED_BANNER)
    console.print(f"comparison: {path}", highlight=False, markup=False)
    console.print(f"each run: fedtextgrad-graph status RUN_ID --runs-dir {folder}", highlight=False, markup=False)
