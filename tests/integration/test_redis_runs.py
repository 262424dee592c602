"""Runs checkpointed in a real Redis: SIGKILL at every stage, Redis dying, resuming elsewhere."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from fedtextgrad_graph import SimulatedChatModel, load_config, run_federated

from ..conftest import wait_for
from .cli import SLOW_CLIENT_MODELS, calls_by, cli, finished_clients, history_shape, read_events, results, start_cli
from .redis_server import RedisServer, free_port

SLOW_AGGREGATOR = '\n[models.aggregator]\nkwargs = { latency_s = 1.0 }\n'


async def _reference_history(config: Path) -> list[tuple]:
    """The history of the same config run without interruption (the simulated model's replies
    do not depend on its latency, so the reference runs without any)."""
    state = await run_federated(load_config(config), models={"task": SimulatedChatModel(), "optimizer": SimulatedChatModel(), "aggregator": SimulatedChatModel(), "judge": SimulatedChatModel()})
    return history_shape(state["history"])


def _kill_when(process, run_dir: Path, condition, what: str) -> list[dict]:
    try:
        wait_for(lambda: condition(read_events(run_dir)), 120, what)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    return read_events(run_dir)


def _resume(run_id: str, url: str, cwd: Path, *extra: str) -> None:
    done = cli("resume", run_id, "--checkpoint", url, *extra, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr


def _round_finished(events: list[dict], round: int) -> bool:
    return any(e["event"] == "round_finished" and e["round"] == round for e in events)


async def test_kill_during_client_steps_and_resume_on_another_machine(make_config, tmp_path, redis_url):
    """Machine A runs and dies mid-round; machine B, with its own copy of the data and its own
    run folder, resumes from the same Redis."""
    config = make_config(clients=3, rounds=3, local_steps=2, models=SLOW_CLIENT_MODELS)
    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine_a.mkdir()
    (machine_b / "data").mkdir(parents=True)
    shutil.copy(tmp_path / "counting.json", machine_b / "data" / "counting.json")
    process = start_cli("run", config, "--run-id", "multi-site", "--checkpoint", redis_url, cwd=machine_a)
    killed = _kill_when(
        process,
        machine_a / "runs" / "multi-site",
        lambda ev: finished_clients(ev, 2) >= {"client-1", "client-2"},
        "clients 1-2 to finish round 2",
    )
    assert "client-3" not in finished_clients(killed, 2)
    (tmp_path / "counting.json").unlink()  # machine A's data is gone with it

    _resume("multi-site", redis_url, machine_b, "--data-dir", str(machine_b / "data"))
    run_dir = machine_b / "runs" / "multi-site"
    resumed_calls = calls_by(read_events(run_dir), read_events(run_dir)[0]["pid"])
    assert not [c for c in resumed_calls if c["round"] == 2 and c["client_id"] in ("client-1", "client-2")]
    assert not [c for c in resumed_calls if c["round"] == 1]
    out = results(run_dir)
    assert out["status"] == "completed" and [r["round"] for r in out["history"]] == [1, 2, 3]
    shutil.copy(machine_b / "data" / "counting.json", tmp_path / "counting.json")
    assert history_shape(out["history"]) == await _reference_history(config)


async def test_kill_during_aggregation(make_config, tmp_path, redis_url):
    config = make_config(clients=3, rounds=3, local_steps=1, models=SLOW_CLIENT_MODELS + SLOW_AGGREGATOR)
    run_dir = tmp_path / "runs" / "agg"
    process = start_cli("run", config, "--run-id", "agg", "--checkpoint", redis_url, cwd=tmp_path)

    # Once every client has uploaded round 2, the 1-second aggregator call is in flight.
    killed = _kill_when(process, run_dir, lambda ev: len(finished_clients(ev, 2)) == 3, "all clients to finish round 2")
    assert sum(e["event"] == "aggregated" for e in killed) == 1  # round 1's only
    killed_pid = killed[0]["pid"]

    _resume("agg", redis_url, tmp_path)
    events = read_events(run_dir)
    resumed = [c for c in events if c["event"] == "llm_call" and c["pid"] != killed_pid]
    assert not [c for c in resumed if c["round"] in (1, 2) and c["client_id"] is not None]  # no client re-ran
    assert [c for c in resumed if c["round"] == 2 and c["role"] == "aggregator"]  # the merge is redone
    out = results(run_dir)
    assert [r["round"] for r in out["history"]] == [1, 2, 3]
    assert history_shape(out["history"]) == await _reference_history(config)


async def test_kill_between_rounds(make_config, tmp_path, redis_url):
    config = make_config(clients=3, rounds=3, local_steps=1, models=SLOW_CLIENT_MODELS)
    run_dir = tmp_path / "runs" / "between"
    process = start_cli("run", config, "--run-id", "between", "--checkpoint", redis_url, cwd=tmp_path)
    killed = _kill_when(process, run_dir, lambda ev: _round_finished(ev, 1), "round 1 to finish")
    killed_pid = killed[0]["pid"]
    assert not _round_finished(killed, 2)

    _resume("between", redis_url, tmp_path)
    events = read_events(run_dir)
    assert not [c for c in events if c["event"] == "llm_call" and c["pid"] != killed_pid and c["round"] == 1]
    out = results(run_dir)
    assert [r["round"] for r in out["history"]] == [1, 2, 3]
    assert history_shape(out["history"]) == await _reference_history(config)


async def test_redis_dies_mid_run_then_comes_back(make_config, tmp_path, redis_server: RedisServer):
    """Redis (with an fsync-always AOF) is SIGKILLed mid-run: the run stops with an error naming
    the URL; once Redis is restarted on its data, the run resumes and completes."""
    config = make_config(clients=3, rounds=3, local_steps=1, models=SLOW_CLIENT_MODELS)
    url = redis_server.url(2)
    run_dir = tmp_path / "runs" / "outage"
    process = start_cli("run", config, "--run-id", "outage", "--checkpoint", url, cwd=tmp_path)
    try:
        wait_for(lambda: _round_finished(read_events(run_dir), 1), 120, "round 1 to finish")
        redis_server.kill()
        process.wait(120)
    finally:
        process.kill()
        process.wait(30)
    output = (tmp_path / "cli-output.log").read_text()
    assert process.returncode == 1, output
    assert f"Redis at {url} is unreachable" in output
    assert "resume it with: fedtextgrad-graph resume outage\n" in output  # the run folder remembers the checkpoint

    status = cli("status", "outage", "--checkpoint", url, cwd=tmp_path)
    assert status.returncode == 2 and url in status.stderr  # still down: a clear error, no traceback

    redis_server.start()
    _resume("outage", url, tmp_path)
    out = results(run_dir)
    assert out["status"] == "completed" and [r["round"] for r in out["history"]] == [1, 2, 3]
    assert history_shape(out["history"]) == await _reference_history(config)


def test_redis_unreachable_at_start(make_config, tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = cli("run", make_config(), "--model", "simulated", "--checkpoint", url, cwd=tmp_path)
    assert done.returncode == 2
    assert f"Redis at {url} is unreachable" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_status_and_export_read_a_redis_checkpoint(make_config, tmp_path, redis_url):
    done = cli("run", make_config(rounds=1), "--model", "simulated", "--run-id", "r", "--checkpoint", redis_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    other = tmp_path / "elsewhere"
    other.mkdir()
    status = cli("status", "r", "--checkpoint", redis_url, cwd=other)
    assert status.returncode == 0 and "completed, 1 round(s) finished" in status.stdout
    exported = cli("export", "r", "--checkpoint", redis_url, cwd=other)
    assert exported.returncode == 0 and exported.stdout.strip() == results(tmp_path / "runs" / "r")["best_prompt"]
    missing = cli("status", "nope", "--checkpoint", redis_url, cwd=other)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
