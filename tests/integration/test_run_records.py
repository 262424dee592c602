"""What a run's records say: the models its rounds really used, paths that exist, and a run
folder that remembers its checkpoint (never its password)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis
from langchain.agents import create_agent

from fedtextgrad_graph import PromptedApp, create_checkpointer, federate_app
from fedtextgrad_graph.checkpoint import sqlite_url

from ..unit.test_apps import _clerk, _clients, _last_number, _optimizer
from .cli import COMMAND, cli, cli_env, results
from .openai_server import OpenAICompatibleServer
from .redis_server import RedisServer

REVIEW = "\n[review]\nrequired = true\n"
PASSWORD = "run-folder-secret"


def _no_dead_path(stdout: str, run_dir: Path) -> None:
    assert "None" not in stdout
    for line in stdout.splitlines():
        if line.startswith(("results: ", "best prompt: ")):
            assert Path(line.split(": ", 1)[1].split(" (")[0]).is_file(), line


async def test_a_python_api_run_shows_the_apps_models(tmp_path: Path):
    url = sqlite_url(tmp_path / "app.sqlite")
    model = _clerk()
    app = PromptedApp(lambda prompt: create_agent(model, tools=[], system_prompt=prompt), name="stock-chain")
    async with create_checkpointer(url) as saver:
        await federate_app(
            app, _clients(), initial_prompt="You are a stock clerk.", optimizer=_optimizer(), metric=_last_number,
            rounds=2, local_steps=1, run_id="api-1", checkpointer=saver,
        )
    status = cli("status", "api-1", "--checkpoint", url, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "models: task: app:stock-chain;" in status.stdout and "gpt-4o-mini" not in status.stdout
    _no_dead_path(status.stdout, tmp_path / "runs" / "api-1")
    assert "best prompt (from round 1): print it with: fedtextgrad-graph export api-1 --checkpoint" in status.stdout
    report = cli("report", "api-1", "--checkpoint", url, "--out", tmp_path / "report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "task: app:stock-chain" in page and "gpt-4o-mini" not in page


def test_a_resume_on_another_model_shows_mixed_models_per_round(make_config, tmp_path: Path):
    """Round 2 is trained, merged and scored by the first process (simulated) and finished by
    the second (openai:other) after its review: each round is recorded with the models that ran it."""
    config = make_config(clients=2, rounds=3, extra=REVIEW)
    assert cli("run", config, "--model", "simulated", "--run-id", "mixed", cwd=tmp_path).returncode == 0
    assert cli("review", "mixed", "--approve", cwd=tmp_path).returncode == 0  # round 1; round 2 awaits review
    with OpenAICompatibleServer() as server:
        for _ in range(2):  # round 2, then round 3
            done = cli("review", "mixed", "--approve", "--model", "openai:other", "--base-url", server.base_url, cwd=tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
    out = results(tmp_path / "runs" / "mixed")
    assert out["status"] == "completed"
    assert [set(r["models"].values()) for r in out["history"]] == [{"simulated"}, {"simulated"}, {"openai:other"}]
    assert out["models"]["task"] == "mixed: simulated (rounds 1-2), openai:other (round 3)"
    assert [g["rounds"] for g in out["models_by_round"]] == [[1, 2], [3]] and out["simulated"] is True
    status = cli("status", "mixed", cwd=tmp_path)
    assert "task: mixed: simulated (rounds 1-2), openai:other (round 3)" in status.stdout
    assert cli("report", "mixed", cwd=tmp_path).returncode == 0
    page = (tmp_path / "runs" / "mixed" / "report" / "report.html").read_text(encoding="utf-8")
    assert "task: mixed: simulated (rounds 1-2), openai:other (round 3)" in page


def test_a_redis_run_is_found_without_checkpoint(make_config, tmp_path: Path, redis_url: str):
    done = cli("run", make_config(rounds=1), "--model", "simulated", "--run-id", "redis-1", "--checkpoint", redis_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--checkpoint" not in done.stdout  # no hint needs it
    for command in ("status", "export", "report"):
        read = cli(command, "redis-1", cwd=tmp_path)
        assert read.returncode == 0, read.stderr
    assert "completed, 1 round(s) finished" in cli("status", "redis-1", cwd=tmp_path).stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exported = cli("export", "redis-1", "--runs-dir", tmp_path / "runs", cwd=elsewhere)
    assert exported.stdout.strip() == results(tmp_path / "runs" / "redis-1")["best_prompt"]
    wrong = cli("status", "redis-1", "--checkpoint", f"sqlite:///{tmp_path}/other.sqlite", cwd=tmp_path)
    assert wrong.returncode == 2 and "no run 'redis-1'" in wrong.stderr  # --checkpoint always wins


def test_a_password_is_taken_from_the_environment_never_from_the_run_folder(make_config, tmp_path: Path):
    directory = tmp_path / "redis-auth"
    directory.mkdir()
    server = RedisServer(directory).start()
    try:
        redis.Redis(port=server.port).config_set("requirepass", PASSWORD)
        url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        done = cli("run", make_config(rounds=1), "--model", "simulated", "--run-id", "auth", "--checkpoint", url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        missing = cli("status", "auth", cwd=tmp_path)
        lines = missing.stderr.strip().splitlines()
        assert missing.returncode == 2 and len(lines) == 1
        assert f"FEDTEXTGRAD_CHECKPOINT='redis://:PASSWORD@127.0.0.1:{server.port}/0'" in lines[0]
        env = {**cli_env(), "FEDTEXTGRAD_CHECKPOINT": url}
        for command in ("status", "export", "report"):
            read = subprocess.run([*COMMAND, command, "auth"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=240)
            assert read.returncode == 0, read.stderr
            assert PASSWORD not in read.stdout + read.stderr
        run_dir = tmp_path / "runs" / "auth"
        assert (run_dir / "checkpoint.json").is_file()
        for path in run_dir.rglob("*"):
            assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path
    finally:
        server.stop()
