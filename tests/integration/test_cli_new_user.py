"""What a new user meets at the command line: bad output paths, a dead endpoint, a missing key,
--version, report -o and tables at 80 columns (issue 11)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from .cli import COMMAND, cli, cli_env


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture
def finished_run(make_config, tmp_path: Path) -> str:
    config = make_config(clients=2, rounds=1, local_steps=1)
    done = cli("run", config, "--model", "simulated", "--run-id", "done", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return "done"


def test_bad_output_paths_end_in_one_line_naming_the_path(finished_run: str, make_config, tmp_path: Path):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    cases = {
        ("draw", "--format", "png", "-o", "missing/x.png"): "--output missing/x.png: cannot write it: the folder missing does not exist",
        ("draw", "-o", "a-folder"): "--output a-folder: cannot write it: it is a folder, not a file",
        ("export", finished_run, "-o", "missing/x.txt"): "--output missing/x.txt: cannot write it: the folder missing does not exist",
        ("report", finished_run, "--out", "a-file/report"): "--output a-file/report: cannot create it: a-file is a file, not a folder",
        ("report", finished_run, "-o", "a-file"): "--output a-file: cannot create it: it is a file, not a folder",
        ("review", finished_run, "--edit", "missing.txt"): "--edit: cannot read missing.txt",
    }
    for args, expected in cases.items():
        assert expected in _one_error_line(cli(*args, cwd=tmp_path)), args
    config = make_config(clients=2, rounds=1, local_steps=1)
    line = _one_error_line(cli("run", config, "--model", "simulated", "--runs-dir", "a-file", "--run-id", "r", cwd=tmp_path))
    assert "--runs-dir a-file/r: cannot create it: a-file is a file, not a folder" in line
    assert not (tmp_path / "missing").exists()


def test_report_writes_with_o_as_export_and_draw_do(finished_run: str, tmp_path: Path):
    done = cli("report", finished_run, "-o", "my-report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "my-report" / "report.html").is_file()


def test_version_comes_from_the_package_metadata(tmp_path: Path):
    from importlib.metadata import version

    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"fedtextgrad-graph {version('fedtextgrad-graph')}"


def test_a_named_model_without_its_key_says_what_to_do_in_one_line(make_config, tmp_path: Path):
    config = make_config(clients=2, rounds=1, local_steps=1)
    line = _one_error_line(cli("run", config, "--model", "openai:gpt-4o-mini", cwd=tmp_path))
    assert "set OPENAI_API_KEY" in line and "--model simulated" in line and "--base-url" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_endpoint_is_named_once_and_at_the_end(make_config, tmp_path: Path):
    budget = "[models]\nretry_backoff_s = 0.2\nretry_max_wait_s = 1\n"
    config = make_config(clients=2, rounds=1, local_steps=1, models=budget)
    url = f"http://127.0.0.1:{_free_port()}/v1"
    done = cli("run", config, "--model", "openai:local", "--base-url", url, "--run-id", "dead", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    output = done.stdout + done.stderr
    retry_lines = [line for line in output.splitlines() if "retry" in line.lower() and not line.startswith("error:")]
    assert len(retry_lines) == 1, retry_lines
    assert retry_lines[0].startswith(f"warning: endpoint {url} unreachable (connection refused); retrying each call")
    error = next(line for line in done.stderr.splitlines() if line.startswith("error:"))
    assert f"at {url}: unreachable (connection refused)" in error
    assert "Traceback" not in output


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_the_round_table_is_not_cut(finished_run: str, tmp_path: Path, columns: int):
    env = {**cli_env(), "COLUMNS": str(columns)}
    done = subprocess.run([*COMMAND, "status", finished_run], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    assert "calls: LLM calls" in done.stdout and "acc, rej, malf, unch: local steps accepted, rejected, malformed, unchanged" in done.stdout
    table = [line for line in done.stdout.splitlines() if line.lstrip().startswith(("round", "1 ", "round 1:"))]
    assert table and all(len(line) <= columns for line in table if not line.startswith("  round 1:")), table
