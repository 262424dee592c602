"""``fedtextgrad-graph compare``: every arm over two seeds on a small two-task fixture, its
comparison.json against the arms' own results.json, and an interrupted comparison that a rerun
of the same command continues (finished runs skipped, the interrupted one resumed).

On this branch the round records have no ``merge``, ``validation_by_task`` or
``llm_tokens`` and results.json no ``test_by_task`` (other parts of issue 9 add them): the
test checks that their figures are present and null, and every figure that exists."""

from __future__ import annotations

import json
import random
import signal
import statistics
from pathlib import Path
from typing import Any

from ..conftest import wait_for, write_bbh
from .cli import SLOW_CLIENT_MODELS, cli, finished_clients, read_events, results, start_cli

ARMS = ["centralized", "concat", "summarize", "uid"]

TWO_TASKS = """
[run]
name = "two-tasks"
seed = 0

[tasks.counting]
format = "bbh"
path = "counting.json"
split = { train = [0, 6], validation = [6, 10], test = [10, 14] }

[tasks.sums]
format = "jsonl"
path = "sums.jsonl"
metric = "exact"
split = { train = [0, 6], validation = [6, 10], test = [10, 14] }

[federation]
partition = "heterogeneous"
clients = [{ id = "counter", task = "counting" }, { id = "adder", task = "sums" }]

[client]
local_steps = 1
batch_size = 2

[convergence]
max_rounds = 1
"""


def write_two_tasks(folder: Path) -> Path:
    write_bbh(folder / "counting.json", n=14)
    rng = random.Random(3)
    pairs = [(rng.randint(1, 9), rng.randint(1, 9)) for _ in range(14)]
    lines = [json.dumps({"input": f"{a} + {b}", "target": str(a + b)}) for a, b in pairs]
    (folder / "sums.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = folder / "two_tasks.toml"
    path.write_text(TWO_TASKS, encoding="utf-8")
    return path


def comparison_folder(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if (p / "comparison.json").exists()]
    return folder


def test_compare_runs_every_arm_over_two_seeds_and_sums_up_their_results(tmp_path: Path):
    config = write_two_tasks(tmp_path)
    done = cli("compare", config, "--model", "simulated", "--seeds", "2", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    folder = comparison_folder(tmp_path / "runs")
    comparison = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    cid = folder.name
    assert comparison["comparison_id"] == cid and cid.startswith("two-tasks-compare-")
    assert comparison["arms"] == ARMS and comparison["seeds"] == [0, 1]
    assert comparison["complete"] is True and comparison["simulated"] is True
    for arm in ARMS:
        result = comparison["results"][arm]
        payloads = [results(folder / f"{cid}-{arm}-seed{seed}") for seed in (0, 1)]
        assert [r["run_id"] for r in result["runs"]] == [p["run_id"] for p in payloads] == [f"{cid}-{arm}-seed{s}" for s in (0, 1)]
        assert [r["seed"] for r in result["runs"]] == [0, 1]
        assert all(p["status"] == "completed" for p in payloads)
        tests = [p["test_accuracy"] for p in payloads]
        assert result["test_accuracy"]["per_seed"] == tests
        assert result["test_accuracy"]["mean"] == statistics.fmean(tests)
        assert result["test_accuracy"]["std"] == statistics.stdev(tests)
        assert result["best_validation_accuracy"]["per_seed"] == [p["best_validation_accuracy"] for p in payloads]
        calls = [p["llm_calls"] for p in payloads]  # every round's calls, the baseline's and the test's
        assert all(c > sum(r["llm_calls"] for r in p["history"]) for c, p in zip(calls, payloads, strict=True))
        assert result["llm_calls"]["per_seed"] == calls
        assert result["prompt_chars"]["per_seed"] == [len(p["best_prompt"]) for p in payloads]
        (round_1,) = result["by_round"]
        assert round_1["validation_accuracy"] == statistics.fmean(p["history"][0]["validation_accuracy"] for p in payloads)
        for key in ("coverage", "uid_score"):  # the mean over a run's rounds of its merge record
            assert result[key]["per_seed"] == [statistics.fmean(r["merge"][key] for r in p["history"]) for p in payloads]
        for kind in ("input", "output", "calls_without_usage"):
            assert result["llm_tokens"][kind]["per_seed"] == [p["llm_tokens"][kind] for p in payloads]
        assert all(p["llm_tokens"]["input"] > 0 for p in payloads)
        for task in ("counting", "sums"):
            assert result["test_by_task"][task]["per_seed"] == [p["test_by_task"][task]["accuracy"] for p in payloads]
        assert round_1["validation_by_task"] == {
            task: statistics.fmean(p["history"][0]["validation_by_task"][task]["accuracy"] for p in payloads) for task in ("counting", "sums")
        }
    for seed in (0, 1):
        central = results(folder / f"{cid}-centralized-seed{seed}")
        federated = results(folder / f"{cid}-concat-seed{seed}")
        assert central["config"]["transport"]["kind"] == "centralized"
        assert central["config"]["run"]["seed"] == federated["config"]["run"]["seed"] == seed
        for r in central["history"]:
            assert list(r["client_metrics"]) == ["centralized"]
            assert r["validation_total"] == 8  # both tasks' validation splits, as the federated arms score
        assert [r["validation_total"] for r in federated["history"]] == [8]
        assert list(federated["history"][0]["client_metrics"]) == ["counter", "adder"]
    for arm in ("concat", "summarize", "uid"):
        assert results(folder / f"{cid}-{arm}-seed0")["config"]["aggregation"]["strategy"] == arm
    assert f"comparison: runs/{cid}/comparison.json" in done.stdout
    table = done.stdout[done.stdout.index(f"comparison {cid}") :]
    for arm in ARMS:
        assert f"\n{arm} " in table


def _llm_calls(run_dir: Path, pid: int) -> list[dict[str, Any]]:
    return [e for e in read_events(run_dir) if e["event"] == "llm_call" and e["pid"] == pid]


def test_an_interrupted_comparison_continues_where_it_stopped(make_config, tmp_path: Path):
    config = make_config(clients=3, rounds=2, local_steps=2, models=SLOW_CLIENT_MODELS)
    assert config == tmp_path / "config.toml"
    command = ("compare", "config.toml", "--arms", "centralized,concat")
    process = start_cli(*command, cwd=tmp_path)
    runs = tmp_path / "runs"

    def concat_run() -> Path | None:
        found = list(runs.glob("*/*-concat-seed0")) if runs.exists() else []
        return found[0] if found else None

    try:
        wait_for(
            lambda: (run := concat_run()) is not None and finished_clients(read_events(run), 1) >= {"client-1", "client-2"},
            240,
            "the centralized run to finish and clients 1-2 of the concat run to finish round 1",
        )
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    output = (tmp_path / "cli-output.log").read_text(encoding="utf-8")
    assert code == 130, output
    assert "interrupted; resume with: fedtextgrad-graph compare config.toml --arms centralized,concat" in output
    assert "Traceback" not in output
    concat = concat_run()
    assert concat is not None
    central = concat.parent / concat.name.replace("-concat-", "-centralized-")
    assert results(central)["status"] == "completed"
    assert "client-3" not in finished_clients(read_events(concat), 1), "client-3 finished before SIGINT: the test lost its window"
    assert not (concat.parent / "comparison.json").exists()

    again = cli(*command, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"(run {central.name}): already completed, skipped" in again.stdout
    resumed = [e for e in read_events(concat) if e["event"] == "resumed"]
    assert len(resumed) == 1
    new_pid = resumed[0]["pid"]
    assert not _llm_calls(central, new_pid), "the finished centralized run was run again"
    calls = _llm_calls(concat, new_pid)
    assert not [e for e in calls if e["round"] == 1 and e["client_id"] in ("client-1", "client-2")]
    assert [e for e in calls if e["round"] == 1 and e["client_id"] == "client-3"]
    comparison = json.loads((concat.parent / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["complete"] is True
    assert comparison["results"]["concat"]["test_accuracy"]["per_seed"] == [results(concat)["test_accuracy"]]
