"""Bad input to ``fedtextgrad-graph compare`` stops with one line and exit status 2, before any
run folder is written or any LLM call is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedtextgrad_graph.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arms", "centralised"], "error: --arms: unknown arm 'centralised'; choose from centralized, concat, summarize, uid"),
        (["--arms", "uid,uid"], "error: --arms: arm 'uid' is listed twice"),
        (["--seeds", "0"], "error: --seeds must be at least 1, not 0"),
        (["--checkpoint", "memory://"], "error: --checkpoint memory:// keeps nothing after each run"),
        (["--data-dir", "elsewhere"], "error: centralized arm: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_anything_runs(make_config, tmp_path: Path, monkeypatch, args, message):
    config = make_config(clients=2, rounds=1)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compare", str(config), "--model", "simulated", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_a_missing_config_file_is_named(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compare", "nope.toml"])
    assert result.exit_code == 2 and "error: nope.toml: config file not found" in result.output


def test_a_config_compare_cannot_run_is_named(make_config, tmp_path: Path, monkeypatch):
    config = make_config(extra="\n[review]\nrequired = true\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compare", str(config), "--model", "simulated"])
    assert result.exit_code == 2
    assert f"error: {config}: [review] required = true would pause every arm" in " ".join(result.output.split())
