"""SIGTERM (a container stop) stops a run like Ctrl-C: the resume command, exit 143, and a
checkpoint that resumes without redoing finished clients."""

from __future__ import annotations

import signal
from pathlib import Path

from ..conftest import wait_for
from .cli import (
    SLOW_CLIENT_MODELS,
    cli,
    finished_clients,
    read_events,
    results,
    start_cli,
)


def test_sigterm_mid_round_prints_the_resume_command_then_resume_finishes(make_config, tmp_path: Path):
    config = make_config(clients=3, rounds=2, local_steps=2, models=SLOW_CLIENT_MODELS)
    run_dir = tmp_path / "runs" / "term"
    process = start_cli("run", config, "--run-id", "term", cwd=tmp_path)
    try:
        wait_for(lambda: finished_clients(read_events(run_dir), 1) >= {"client-1", "client-2"}, 120, "clients 1-2 to finish round 1")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    output = (tmp_path / "cli-output.log").read_text(encoding="utf-8")
    assert code == 143, output
    assert "interrupted; resume with: fedtextgrad-graph resume term" in output and "Traceback" not in output
    stopped = read_events(run_dir)
    stopped_pid = stopped[0]["pid"]
    assert "client-3" not in finished_clients(stopped, 1), "client-3 finished before SIGTERM: the test lost its window"

    resumed = cli("resume", "term", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    calls = [e for e in read_events(run_dir) if e["pid"] != stopped_pid and e["event"] == "llm_call"]
    assert not [e for e in calls if e["round"] == 1 and e["client_id"] in ("client-1", "client-2")]
    assert [e for e in calls if e["round"] == 1 and e["client_id"] == "client-3"]
    assert results(run_dir)["status"] == "completed"
