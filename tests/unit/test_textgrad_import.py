"""Importing textgrad through the package writes no prompt log anywhere it could leak."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_no_logs_folder_and_no_log_records(tmp_path):
    script = textwrap.dedent(
        """
        import logging, os
        import fedtextgrad_graph
        assert "textgrad" not in __import__("sys").modules  # nothing is imported eagerly
        from fedtextgrad_graph.site._textgrad import import_textgrad
        tg = import_textgrad()
        logger = logging.getLogger("textgrad")
        assert not [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
        assert not logger.propagate
        assert "TEXTGRAD_LOG_DIR" not in os.environ
        logger.info("private prompt")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "private prompt" not in done.stderr + done.stdout
    assert list(tmp_path.iterdir()) == []  # no ./logs/ folder
