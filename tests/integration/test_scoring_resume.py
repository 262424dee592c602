"""A run killed with SIGKILL in the middle of a scoring phase resumes and pays again only for
the shards that had not finished, and records the phase exactly as an uninterrupted run does."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from ..conftest import wait_for, write_bbh
from .cli import cli, read_events, results, start_cli

SHARD = 5  # server-held examples per checkpointed shard
VALIDATION = 100
MAX_CONCURRENCY = 2  # few calls in flight, so shards finish one after another

CONFIG = f"""
[run]
name = "scoring"
seed = 0
max_concurrency = {MAX_CONCURRENCY}

[tasks.counting]
format = "bbh"
path = "counting.json"
split = {{ train = [0, 30], validation = [30, {30 + VALIDATION}], test = [{30 + VALIDATION}, {40 + VALIDATION}] }}

[federation]
num_clients = 2

[client]
local_steps = 1
batch_size = 3

[convergence]
max_rounds = 1

[evaluation]
shard_size = {SHARD}

[models]
model = "simulated"
kwargs = {{ latency_s = 0.05 }}
"""


def _baseline_calls(events: list[dict[str, Any]], pid: int) -> int:
    """The baseline phase's task-model calls one process made (the server's, round 0)."""
    return sum(1 for e in events if e["event"] == "llm_call" and e["pid"] == pid and e["round"] == 0 and e["client_id"] is None)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_sigkill_in_the_baseline_phase_then_resume(tmp_path: Path, store: str, request: pytest.FixtureRequest):
    write_bbh(tmp_path / "counting.json", n=40 + VALIDATION)
    config = tmp_path / "scoring.toml"
    config.write_text(CONFIG, encoding="utf-8")
    run_dir = tmp_path / "runs" / "killed"
    checkpoint = ["--checkpoint", request.getfixturevalue("redis_url")] if store == "redis" else []
    process = start_cli("run", config, "--run-id", "killed", *checkpoint, cwd=tmp_path)
    try:
        wait_for(lambda: 40 <= _baseline_calls(read_events(run_dir), process.pid) <= 60, 120, "40 baseline calls")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    before = _baseline_calls(read_events(run_dir), process.pid)
    assert before < VALIDATION, "the baseline finished before the kill: the test lost its window"

    resumed = cli("resume", "killed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    pids = {e["pid"] for e in read_events(run_dir)} - {process.pid}
    (resumed_pid,) = pids
    again = _baseline_calls(read_events(run_dir), resumed_pid)
    # Only the shards that had not finished are scored again: the calls lost to the kill are at
    # most those of the shards in flight (each call in flight holds its shard open).
    assert again <= VALIDATION - before + MAX_CONCURRENCY * SHARD, (before, again)
    assert again < VALIDATION

    # The phase's record counts every example and call once, as if nothing had happened.
    out = results(run_dir)
    reference = cli("run", config, "--run-id", "reference", *checkpoint, cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    expected = results(tmp_path / "runs" / "reference")
    assert out["status"] == "completed"
    assert out["baseline_by_task"] == expected["baseline_by_task"]
    assert out["baseline_by_task"]["counting"]["total"] == VALIDATION
    assert out["baseline_validation_accuracy"] == expected["baseline_validation_accuracy"]
    for counts in ("llm_calls", "llm_tokens", "llm_usage"):  # the baseline's calls are in the run's
        assert out[counts] == expected[counts], counts
    assert out["history"][0]["validation_accuracy"] == expected["history"][0]["validation_accuracy"]
