"""Shared by the checkpoint benchmarks: a redis-server, and the bytes a run's keys hold in it
(their data and round config: _rounds.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

__all__ = ["redis_bytes", "redis_server"]


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
