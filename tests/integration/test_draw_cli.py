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
    assert "[ broadcast ] <-- next round -" in text and "[ client_optimizer:textgrad_step ]" in text
    assert text.splitlines()[0] == "[ __start__ ]" and text.splitlines()[-1].startswith("[ __end__ ]")
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


def test_xray_is_a_flag(tmp_path: Path):
    shown = cli("draw", "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "--no-xray" in shown.stdout
    plain = cli("draw", "--format", "ascii", "--no-xray", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "sample_minibatch" not in plain.stdout


def test_a_run_id_is_refused_in_one_line(tmp_path: Path):
    done = cli("draw", "run-1", "--xray", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        (
            "error: draw takes no run id or other argument (got 'run-1'): it draws the round graph, which is the same "
            "for every run; for one run's rounds use: fedtextgrad-graph report RUN_ID"
        )
    ]
    assert done.stdout == "" and list(tmp_path.iterdir()) == []
