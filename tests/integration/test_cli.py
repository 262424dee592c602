"""End-to-end runs of the command line with the simulated model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli import cli, read_events, results

FORMAT = "The last line of your response should be of the following format: 'Answer: $VALUE' where VALUE is a numerical value."


@pytest.fixture
def finished_run(make_config, tmp_path: Path) -> tuple[Path, Path]:
    """A completed 2-round, 3-client simulated run; returns (work dir, run dir)."""
    config = make_config(clients=3, rounds=2, local_steps=2)
    done = cli("run", config, "--model", "simulated", "--run-id", "e2e", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp_path, tmp_path / "runs" / "e2e"


def test_offline_run_writes_results(finished_run):
    work, run_dir = finished_run
    out = results(run_dir)
    assert out["status"] == "completed" and out["simulated"] is True
    assert out["models"] == {"task": "simulated", "optimizer": "simulated", "aggregator": "simulated", "judge": "simulated"}
    assert [r["round"] for r in out["history"]] == [1, 2]
    for record in out["history"]:
        assert sorted(record["client_prompts"]) == ["client-1", "client-2", "client-3"]
        assert record["global_prompt"].endswith(FORMAT) and record["global_prompt"].count(FORMAT) == 1
        assert record["prompt_chars"] == len(record["global_prompt"]) and record["prompt_tokens"] > 0
        assert all(len(m["steps"]) == 2 for m in record["client_metrics"].values())
        assert 0 <= record["validation_accuracy"] <= 1 and record["validation_total"] == 10
    assert out["stop_reason"] == "max_rounds" and out["test_accuracy"] is not None
    assert (run_dir / "best_prompt.txt").read_text().strip() == out["best_prompt"]
    assert json.loads((run_dir / "config.json").read_text())["federation"]["num_clients"] == 3
    assert not (work / "logs").exists()  # textgrad's prompt log never reaches the working directory


def test_events_log_has_call_metadata_but_no_private_text(finished_run, tmp_path):
    _, run_dir = finished_run
    events = read_events(run_dir)
    calls = [e for e in events if e["event"] == "llm_call"]
    assert calls and {e["role"] for e in calls} == {"task", "optimizer", "aggregator"}
    assert sum(e["event"] == "local_step" for e in events) == 2 * 3 * 2
    log = (run_dir / "events.jsonl").read_text()
    examples = json.loads((tmp_path / "counting.json").read_text())["examples"]
    assert not any(ex["input"] in log for ex in examples)


def test_status_and_export(finished_run):
    work, run_dir = finished_run
    status = cli("status", "e2e", cwd=work)
    assert status.returncode == 0 and "completed" in status.stdout and "SIMULATED" in status.stdout
    out = results(run_dir)
    latest = cli("export", "e2e", "--which", "latest", cwd=work)
    assert latest.returncode == 0 and latest.stdout.strip() == out["latest_prompt"]
    assert "SIMULATED" in latest.stderr
    target = work / "prompt.txt"
    best = cli("export", "e2e", "-o", target, cwd=work)
    assert best.returncode == 0 and target.read_text().strip() == out["best_prompt"]


def test_resume_of_a_completed_run_and_reusing_its_id(finished_run, make_config):
    work, _ = finished_run
    again = cli("resume", "e2e", cwd=work)
    assert again.returncode == 0 and "already completed" in again.stdout
    clash = cli("run", make_config(), "--model", "simulated", "--run-id", "e2e", cwd=work)
    assert clash.returncode == 2 and "fedtextgrad-graph resume e2e" in clash.stderr


def test_no_model_configured_lists_the_options(make_config, tmp_path):
    done = cli("run", make_config(), cwd=tmp_path)
    assert done.returncode == 2
    for option in ("--model simulated", "OPENAI_API_KEY", "--base-url", '[models] model = "provider:name"'):
        assert option in done.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_overrides_are_labelled_per_round(make_config, tmp_path):
    """A run started simulated and finished on a real endpoint stays labelled simulated."""
    from .openai_server import OpenAICompatibleServer

    config = make_config(rounds=2, local_steps=1)
    first = cli("run", config, "--model", "simulated", "--run-id", "mixed", cwd=tmp_path)
    assert first.returncode == 0
    with OpenAICompatibleServer() as server:
        again = cli("resume", "mixed", "--model", "openai:other", "--base-url", server.base_url, cwd=tmp_path)
    assert again.returncode == 0 and "apply to this resume only" in again.stdout
    out = results(tmp_path / "runs" / "mixed")
    assert out["simulated"] is True and out["models"]["task"] == "simulated"  # no round ran on openai:other
    assert all(r["models"]["task"] == "simulated" for r in out["history"])


def test_unknown_run_and_bad_which(tmp_path):
    missing = cli("resume", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no checkpoint for run 'nope'" in missing.stderr
    bad = cli("export", "nope", "--which", "worst", cwd=tmp_path)
    assert bad.returncode == 2 and "--which" in bad.stderr


BAD_CONFIGS = {
    "unknown-field": (("batch_size = 3", "batch_size = 3\nlocal_stepz = 2"), "client.local_stepz: unknown field"),
    "sampling-rate": (("sampling_rate = 1.0", "sampling_rate = 1.5"), "federation.sampling_rate"),
    "zero-rate": (("sampling_rate = 1.0", "sampling_rate = 0"), "federation.sampling_rate"),
    "zero-steps": (("local_steps = 1", "local_steps = 0"), "client.local_steps"),
    "negative-steps": (("local_steps = 1", "local_steps = -2"), "client.local_steps"),
    "missing-data": (('path = "counting.json"', 'path = "absent.json"'), "absent.json: data file not found"),
    "too-many-clients": (("num_clients = 3", "num_clients = 40"), "40 clients but only 30 examples"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_input_fails_before_any_llm_call(make_config, tmp_path, case):
    (old, new), message = BAD_CONFIGS[case]
    config = make_config(local_steps=1)
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))
    done = cli("run", config, "--model", "simulated", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (tmp_path / "runs").exists()  # no checkpoint, no events: nothing ran


def test_malformed_data_file_names_the_line(make_config, tmp_path):
    config = make_config()
    (tmp_path / "counting.json").write_text('{"examples": [\n{"input": "x", "target": "1"},\n{"input": }\n]}')
    done = cli("run", config, "--model", "simulated", cwd=tmp_path)
    assert done.returncode == 2 and "counting.json:3: invalid JSON" in done.stderr
