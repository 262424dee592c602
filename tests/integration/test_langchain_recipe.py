"""The LangChain-app recipe runs offline, or against an OpenAI-compatible endpoint, shows the
app's prompt being optimized, names its run, and fails in one line on a dead endpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .cli import cli, cli_env
from .openai_server import OpenAICompatibleServer
from .redis_server import free_port

RECIPE = Path(__file__).resolve().parents[2] / "integrations" / "langchain_app" / "app.py"


def _recipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RECIPE), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.parametrize("variant", [[], ["--agent"]], ids=["chain", "agent"])
def test_recipe_runs_offline(tmp_path, variant, redis_url):
    done = _recipe("--rounds", "2", "--checkpoint", redis_url, *variant, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "SIMULATED MODEL" in out
    assert "round 1:" in out and "round 2:" in out
    lineage = out.split("prompt lineage:")[1].split("best prompt")[0].strip().splitlines()
    prompts = [line.split("): ", 1)[1] for line in lineage]
    assert len(prompts) == 3 and len(set(prompts)) >= 2  # the prompt changed across rounds
    assert "agent answer (best prompt served live from the checkpoint): Answer:" in out


def test_recipe_against_an_endpoint_names_its_run_for_the_cli(tmp_path):
    with OpenAICompatibleServer() as server:
        done = _recipe("--model", "openai:local-llama", "--base-url", server.base_url, "--rounds", "1", "--run-id", "shop", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(server.requests) > 0  # the app, the optimizer and the agent all went over HTTP
    assert "SIMULATED MODEL" not in done.stdout
    assert done.stdout.startswith("run shop (checkpoint ")
    assert "  fedtextgrad-graph status shop\n" in done.stdout
    status = cli("status", "shop", cwd=tmp_path)  # word for word as printed
    assert status.returncode == 0, status.stdout + status.stderr
    assert "run shop: completed, 1 round(s) finished" in status.stdout


def test_recipe_with_a_dead_endpoint_fails_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    done = _recipe("--model", "openai:local-llama", "--base-url", url, "--max-retries", "0", "--run-id", "dead", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and url in errors[0] and "--run-id dead --resume" in errors[0]


def test_recipe_rejects_bad_input_in_one_line(tmp_path):
    done = _recipe("--base-url", "http://127.0.0.1:9/v1", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.splitlines() == ["error: --base-url needs --model, the name of a model the endpoint serves"]
