"""Shared by the checkpoint benchmarks: their data and round config, a redis-server, and the
bytes a run's keys hold in it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

__all__ = ["redis_bytes", "redis_server", "round_config", "write_data"]

ROOT = Path(__file__).resolve().parent.parent


def redis_bytes(client: redis.Redis, prefix: str) -> int:
    """The memory of the keys under ``prefix`` (Redis ``MEMORY USAGE``)."""
    return sum(client.memory_usage(key, samples=0) or 0 for key in client.scan_iter(f"{prefix}:*"))


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """``url``, or a redis-server started on a free loopback port for the block (then stopped)."""
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: install it (scripts/provision-test-deps) or pass --redis-url")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", data],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)



def write_data(path: Path, clients: int) -> None:
    """Object-counting examples for ``clients`` clients (3 each) and 20 to score on."""
    spec = importlib.util.spec_from_file_location("make_data", ROOT / "examples" / "make_data.py")
    assert spec is not None and spec.loader is not None
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    examples = make_data.object_counting(__import__("random").Random(0), clients * 3 + 20)
    path.write_text(json.dumps({"examples": examples}))


def round_config(clients: int, rounds: int, data_dir: Path) -> dict[str, Any]:
    """Every round runs: simulated clients, one local step, ``uid``, no baseline or test."""
    train = clients * 3
    return {
        "run": {"name": "bench", "max_concurrency": 64, "data_dir": str(data_dir)},
        "tasks": {
            "counting": {
                "format": "bbh",
                "path": "data.json",
                "split": {"train": [0, train], "validation": [train, train + 10], "test": [train + 10, train + 20]},
            }
        },
        "federation": {"num_clients": clients},
        "client": {"local_steps": 1, "batch_size": 3},
        "aggregation": {"strategy": "uid"},
        "evaluation": {"baseline": False, "test": False},
        "convergence": {"max_rounds": rounds, "unchanged_rounds": None, "patience": None},
    }
