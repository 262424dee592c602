"""``langgraph dev`` serves the round graph from ``langgraph.json``; a run over its HTTP API completes.

Needs ``langgraph-cli[inmem]`` (in the ``dev`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cli import cli_env

REPO = Path(__file__).resolve().parents[2]
GRAPH_ID = "fedtextgrad_round"
STARTUP_TIMEOUT_S = 90


def _require_langgraph_dev() -> Path:
    """The ``langgraph`` command next to this interpreter."""
    command = Path(sys.executable).parent / "langgraph"
    if importlib.util.find_spec("langgraph_api") is None or not command.exists():
        pytest.fail('needs langgraph dev: pip install -e ".[dev]" (it brings "langgraph-cli[inmem]")')
    return command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """A running ``langgraph dev``: its address, its log, and JSON requests to its API."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def request(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data, {"content-type": "application/json"}, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return json.load(response)


@pytest.fixture
def langgraph_dev(tmp_path: Path) -> Iterator[_Server]:
    """``langgraph dev`` in the repository root, on a free loopback port, stopped afterwards."""
    command = _require_langgraph_dev()
    port = _free_port()
    env = {k: v for k, v in cli_env().items() if not k.startswith("FEDTEXTGRAD_")}
    env["LANGSMITH_TRACING"] = "false"
    log = tmp_path / "langgraph-dev.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [str(command), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one below
        )
    server = _Server(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"langgraph dev exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                server.request("GET", "/ok", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"langgraph dev did not answer in {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-4000:]}")
                time.sleep(0.5)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_run_over_the_http_api(langgraph_dev: _Server):
    assistants = langgraph_dev.request("POST", "/assistants/search", {"graph_id": GRAPH_ID})
    assert [a["graph_id"] for a in assistants] == [GRAPH_ID], langgraph_dev.log.read_text()[-4000:]
    assistant_id = assistants[0]["assistant_id"]

    drawing = langgraph_dev.request("GET", f"/assistants/{assistant_id}/graph?xray=true")
    client_nodes = {"client_optimizer:sample_minibatch", "client_optimizer:textgrad_step"}
    assert client_nodes <= {node["id"] for node in drawing["nodes"]}  # Studio's expanded view

    thread = langgraph_dev.request("POST", "/threads", {})
    state = langgraph_dev.request("POST", f"/threads/{thread['thread_id']}/runs/wait", {"assistant_id": GRAPH_ID, "input": {}})
    assert "__error__" not in state, f"{state}\n{langgraph_dev.log.read_text()[-4000:]}"
    assert [r["round"] for r in state["history"]] == list(range(1, len(state["history"]) + 1))
    assert state["history"] and state["stop_reason"] and state["best_prompt"]
    assert state["test_accuracy"] is not None
    assert set(state["history"][0]["models"].values()) == {"simulated"}
