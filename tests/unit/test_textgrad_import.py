"""Importing textgrad through the package writes no prompt log anywhere it could leak."""

from __future__ import annotations

import os
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
        assert not logger.isEnabledFor(logging.INFO)  # its per-call records are never built
        assert "TEXTGRAD_LOG_DIR" not in os.environ
        logger.info("private prompt")
        """
    )
    # Not this process's environment as it is now: another test's textgrad import, on a thread,
    # may have set TEXTGRAD_LOG_DIR for the moment it takes.
    env = {k: v for k, v in os.environ.items() if k != "TEXTGRAD_LOG_DIR"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "private prompt" not in done.stderr + done.stdout
    assert list(tmp_path.iterdir()) == []  # no ./logs/ folder


def test_litellm_is_imported_only_if_textgrads_litellm_engine_calls_it(tmp_path):
    """textgrad imports litellm (seconds of CPU) for an engine this package never uses: a
    stand-in takes its place during the import, and the real one loads on that engine's call."""
    script = textwrap.dedent(
        """
        import sys
        from fedtextgrad_graph.site._textgrad import import_textgrad
        import_textgrad()
        assert "litellm" not in sys.modules
        import textgrad.engine_experimental.litellm as engine
        import litellm  # an app's own import gets the real module
        assert litellm.__file__ and litellm.completion is not engine.completion
        litellm.completion = lambda **kwargs: {"choices": [{"message": {"content": kwargs["model"]}}]}
        reply = engine.LiteLLMEngine("some-model", is_multimodal=False).generate("hi")
        assert reply == "some-model", reply  # textgrad's engine reached the real litellm
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TEXTGRAD_LOG_DIR"}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # the real litellm's import stays offline
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr


def test_prefetch_returns_before_the_import_ends_and_the_step_waits_for_it(monkeypatch):
    """The transports start textgrad's import on a thread (seconds: litellm), so the baseline's
    LLM calls need not wait for it; the first step's ``import_textgrad`` waits for that import."""
    import threading

    from fedtextgrad_graph.site import _textgrad

    entered, release, imports = threading.Event(), threading.Event(), []

    def blocked_import():
        imports.append(threading.current_thread().name)
        entered.set()
        release.wait(30)
        return "textgrad module"

    monkeypatch.setattr(_textgrad, "_import_textgrad", blocked_import)
    monkeypatch.delitem(sys.modules, "textgrad", raising=False)
    _textgrad.prefetch_textgrad()  # returns although the import is still blocked
    assert entered.wait(30) and not release.is_set()
    waiter = threading.Thread(target=lambda: imports.append(_textgrad.import_textgrad()))
    waiter.start()
    release.set()
    waiter.join(30)
    assert imports[0] == "fedtextgrad-import-textgrad"
    assert imports[-1] == "textgrad module"
