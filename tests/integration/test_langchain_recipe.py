"""The LangChain-app recipe runs offline and shows the app's prompt being optimized."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .cli import cli_env

RECIPE = Path(__file__).resolve().parents[2] / "integrations" / "langchain_app" / "app.py"


@pytest.mark.parametrize("variant", [[], ["--agent"]], ids=["chain", "agent"])
def test_recipe_runs_offline(tmp_path, variant, redis_url):
    done = subprocess.run(
        [sys.executable, str(RECIPE), "--rounds", "2", "--checkpoint", redis_url, *variant],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "SIMULATED MODEL" in out
    assert "round 1:" in out and "round 2:" in out
    lineage = out.split("prompt lineage:")[1].split("best prompt")[0].strip().splitlines()
    prompts = [line.split("): ", 1)[1] for line in lineage]
    assert len(prompts) == 3 and len(set(prompts)) >= 2  # the prompt changed across rounds
    assert "agent answer (prompt served live from the checkpoint): Answer:" in out
