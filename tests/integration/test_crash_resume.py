"""A run killed with SIGKILL in the middle of a round resumes and finishes without redoing work."""

from __future__ import annotations

import signal
from pathlib import Path

from ..conftest import wait_for
from .cli import SLOW_CLIENT_MODELS, cli, finished_clients, history_shape, read_events, results, start_cli


def test_sigkill_mid_round_then_resume(make_config, tmp_path: Path):
    config = make_config(clients=3, rounds=3, local_steps=2, models=SLOW_CLIENT_MODELS)
    run_dir = tmp_path / "runs" / "crash"
    process = start_cli("run", config, "--run-id", "crash", cwd=tmp_path)
    try:
        wait_for(lambda: finished_clients(read_events(run_dir), 2) >= {"client-1", "client-2"}, 120, "clients 1-2 to finish round 2")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    killed = read_events(run_dir)
    killed_pid = killed[0]["pid"]
    assert "client-3" not in finished_clients(killed, 2), "client-3 finished before the kill: the test lost its window"
    assert not any(e["event"] == "round_finished" and e["round"] == 2 for e in killed)
    status = cli("status", "crash", cwd=tmp_path)
    assert status.returncode == 0 and "incomplete, 1 round(s) finished" in status.stdout
    # Nothing that is not there: no None, no results.json (never written), where it stopped.
    assert "None" not in status.stdout and "results:" not in status.stdout
    assert "interrupted in round 2 (or still running); resume it with: fedtextgrad-graph resume crash" in status.stdout
    assert "print it with: fedtextgrad-graph export crash" in status.stdout

    resumed = cli("resume", "crash", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = [e for e in read_events(run_dir) if e["pid"] != killed_pid]
    calls = [e for e in after if e["event"] == "llm_call"]
    # Clients that had uploaded their round-2 prompt are not run again: no model calls for them.
    assert not [e for e in calls if e["round"] == 2 and e["client_id"] in ("client-1", "client-2")]
    assert [e for e in calls if e["round"] == 2 and e["client_id"] == "client-3"]
    assert not [e for e in calls if e["round"] == 1]  # round 1 was finished and checkpointed

    out = results(run_dir)
    assert out["status"] == "completed"
    assert [r["round"] for r in out["history"]] == [1, 2, 3]

    # The resumed run ends exactly where an uninterrupted run of the same config ends.
    reference = cli("run", config, "--run-id", "reference", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    assert history_shape(out["history"]) == history_shape(results(tmp_path / "runs" / "reference")["history"])
    assert out["best_prompt"] == results(tmp_path / "runs" / "reference")["best_prompt"]
