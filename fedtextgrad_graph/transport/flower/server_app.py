"""The Flower ServerApps of this package.

``app`` is the Flower-native path: ``flwr run integrations/flower CONNECTION --run-config
'config="/abs/path/server.toml"'`` runs the round graph inside the ServerApp process the
SuperLink launches, writing the run folder and checkpoint on the SuperLink's machine.
Run config keys: ``config`` (the server's TOML, required for a new run), ``run-id``,
``resume`` (``true`` to continue ``run-id`` with the config saved in its checkpoint),
``runs-dir`` (default ``runs``). The checkpoint URL is
never in the run config (every site sees it): set ``FEDTEXTGRAD_CHECKPOINT`` in the
SuperLink's environment, or get the default SQLite file in the run folder.

``hosted_elsewhere`` is what runs started by ``fedtextgrad-graph run --superlink`` name as
their ServerApp: that process is the ServerApp, so a SuperLink that launches it itself is
misconfigured, and this says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

__all__ = ["app", "hosted_elsewhere"]

app = ServerApp()
hosted_elsewhere = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the round graph of the server config named in the run config, or resume ``run-id``
    with the config saved in its checkpoint."""
    from ...cli.app import execute_run, saved_run
    from ...config import ConfigError, load_config
    from ...runs import new_run_id
    from .server_transport import FlowerTransport

    settings = context.run_config
    resume = bool(settings.get("resume", False))
    runs_dir = Path(str(settings.get("runs-dir") or "runs"))
    checkpoint = os.environ.get("FEDTEXTGRAD_CHECKPOINT")
    if resume and not settings.get("run-id"):
        raise ValueError("run config: resume = true needs the run-id of the run to continue")
    if not resume and not settings.get("config"):
        raise ValueError("run config: set config = \"/path/to/server.toml\" (flwr run ... --run-config 'config=\"...\"')")
    run_id = str(settings.get("run-id") or "")
    try:
        if resume:
            config = saved_run(run_id, runs_dir, checkpoint)[2]
        else:
            try:
                config = load_config(str(settings["config"]))
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            run_id = run_id or new_run_id(config.run.name)
        config = config.with_flower(config.transport.flower)
        execute_run(
            config,
            run_id=run_id,
            runs_dir=runs_dir,
            checkpoint=checkpoint,
            resume=resume,
            transport=FlowerTransport(config.transport.flower, grid=grid),
        )
    except typer.Exit as stopped:
        if stopped.exit_code:
            raise RuntimeError(f"run {run_id} did not complete (exit code {stopped.exit_code}); see the lines above") from None


@hosted_elsewhere.main()
def refuse(grid: Grid, context: Context) -> None:
    """Explain why this ServerApp should not have been launched by the SuperLink."""
    raise RuntimeError(
        "this run's ServerApp is the 'fedtextgrad-graph run --superlink' process that started it, but this "
        "SuperLink launched one itself (flower-superlink --isolation subprocess); start the SuperLink with "
        "'fedtextgrad-graph superlink' instead"
    )
