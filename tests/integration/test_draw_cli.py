"""``fedtextgrad-graph draw`` in a subprocess: every format, to stdout or a file."""

from __future__ import annotations

from pathlib import Path

from .cli import cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_mermaid_to_stdout(tmp_path: Path):
    plain = cli("draw", cwd=tmp_path)
    xray = cli("draw", "--format", "mermaid", "--xray", cwd=tmp_path)
    assert plain.returncode == 0 and xray.returncode == 0, plain.stderr + xray.stderr
    assert "graph TD;" in plain.stdout and "client_optimizer(client_optimizer)" in plain.stdout
    assert "sample_minibatch" not in plain.stdout
    assert "subgraph client_optimizer" in xray.stdout and "textgrad_step" in xray.stdout
    assert list(tmp_path.iterdir()) == []


def test_ascii_to_a_file(tmp_path: Path):
    done = cli("draw", "--format", "ascii", "--xray", "--output", "graph.txt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "graph.txt").read_text(encoding="utf-8")
    assert "| check_convergence |" in text and "| client_optimizer:textgrad_step |" in text
    assert str((tmp_path / "graph.txt").resolve()) in done.stdout


def test_png_defaults_to_round_graph_png(tmp_path: Path):
    done = cli("draw", "--format", "png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "round_graph.png").read_bytes().startswith(PNG_SIGNATURE)
    assert str((tmp_path / "round_graph.png").resolve()) in done.stdout
    named = cli("draw", "--format", "png", "--xray", "-o", "xray.png", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert (tmp_path / "xray.png").read_bytes().startswith(PNG_SIGNATURE)


def test_unknown_format_is_bad_input(tmp_path: Path):
    done = cli("draw", "--format", "svg", cwd=tmp_path)
    assert done.returncode == 2
    assert "--format must be 'mermaid', 'png' or 'ascii'" in done.stderr
