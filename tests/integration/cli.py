"""Run the ``fedtextgrad-graph`` command line in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

COMMAND = [sys.executable, "-m", "fedtextgrad_graph"]


def cli_env() -> dict[str, str]:
    """The current environment without any OpenAI credentials (tests never call a paid API)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


def cli(*args: str | Path, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *map(str, args)], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False, timeout=timeout
    )


def start_cli(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    """Start the CLI in the background; its output goes to ``cwd/cli-output.log``. The caller
    waits for the process (``wait``, or ``kill`` then ``wait``)."""
    with (cwd / "cli-output.log").open("a", encoding="utf-8") as log:  # the child writes to its own copy of the handle
        return subprocess.Popen([*COMMAND, *map(str, args)], cwd=cwd, env=cli_env(), stdout=log, stderr=subprocess.STDOUT, text=True)


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def results(run_dir: Path) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    return payload


# client-3 is several times slower than the others, so clients 1 and 2 finish a round while it
# is still working: a window to kill a run in the middle of a round.
SLOW_CLIENT_MODELS = """
[models]
model = "simulated"
kwargs = { latency_s = 0.02 }

[[federation.clients]]
id = "client-1"

[[federation.clients]]
id = "client-2"

[[federation.clients]]
id = "client-3"
models = { kwargs = { latency_s = 0.15 } }
"""


def finished_clients(events: list[dict[str, Any]], round: int) -> set[str]:
    return {e["client_id"] for e in events if e["event"] == "client_finished" and e["round"] == round}


def history_shape(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What an interrupted run must end with, like an uninterrupted one: per round, the
    selected clients, their prompts, the global prompt and its validation accuracy."""
    return [(r["round"], r["clients"], r["client_prompts"], r["global_prompt"], r["validation_accuracy"]) for r in history]


def calls_by(events: list[dict[str, Any]], pid: int) -> list[dict[str, Any]]:
    """The LLM calls one process made."""
    return [e for e in events if e["event"] == "llm_call" and e["pid"] == pid]
