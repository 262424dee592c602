"""Checkpoint write latency and storage per round: SQLite against Redis.

    python benchmarks/checkpoint.py [--clients 3 10 50] [--rounds 2] [--redis-url redis://...]

Runs the real round graph (simulated model, no latency, one local step per client) with each
checkpointer and times every checkpoint write the graph makes (``aput`` and ``aput_writes``).
Storage is the SQLite file's growth and the Redis keys' ``MEMORY USAGE``, divided by rounds.
Without ``--redis-url`` (or ``REDIS_URL``) a redis-server is started on a free local port.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from _checkpoint_bench import redis_bytes, redis_server
from _rounds import round_config, write_data
from langgraph.checkpoint.base import BaseCheckpointSaver
from rich.console import Console
from rich.table import Table

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, create_checkpointer
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.runs import stream_run
from fedtextgrad_graph.site._textgrad import import_textgrad


def _timed(saver: BaseCheckpointSaver[str], samples: list[float]) -> None:
    for name in ("aput", "aput_writes"):
        method = getattr(saver, name)

        async def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await _method(*args, **kwargs)
            finally:
                samples.append(time.perf_counter() - started)

        setattr(saver, name, timed)


async def _run(config: dict[str, Any], url: str) -> list[float]:
    cfg = parse_config(config, source="benchmark")
    model = SimulatedChatModel()
    runtime = FederationRuntime.create(cfg, models=dict.fromkeys(("task", "optimizer", "aggregator", "judge"), model))
    samples: list[float] = []
    try:
        async with create_checkpointer(url) as saver:
            _timed(saver, samples)
            await stream_run(runtime, saver, f"bench-{uuid.uuid4().hex[:8]}", resume=False)
    finally:
        await runtime.aclose()
    return samples


def _ms(samples: list[float], q: float) -> str:
    ordered = sorted(samples)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[3, 10, 50])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()
    import_textgrad()
    table = Table(title=f"checkpoint writes of the round graph ({args.rounds} rounds, 1 local step, simulated model)")
    for column in ("clients", "store", "writes", "median (ms)", "p95 (ms)", "bytes per round"):
        table.add_column(column, justify="right")
    with redis_server(args.redis_url) as base_url, tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        client = redis.Redis.from_url(base_url)
        for clients in args.clients:
            data_dir = tmp_path / f"data-{clients}"
            data_dir.mkdir()
            write_data(data_dir / "data.json", clients)
            config = round_config(clients, args.rounds, data_dir)
            db = tmp_path / f"sqlite-{clients}.sqlite"
            samples = asyncio.run(_run(config, sqlite_url(db)))
            size = sum(p.stat().st_size for p in tmp_path.glob(f"sqlite-{clients}.sqlite*"))
            table.add_row(str(clients), "SQLite", str(len(samples)), _ms(samples, 0.5), _ms(samples, 0.95), f"{size // args.rounds:,}")
            prefix = f"bench-{uuid.uuid4().hex[:8]}"
            samples = asyncio.run(_run(config, f"{base_url}?prefix={prefix}"))
            stored = redis_bytes(client, prefix)
            table.add_row(str(clients), "Redis", str(len(samples)), _ms(samples, 0.5), _ms(samples, 0.95), f"{stored // args.rounds:,}")
        client.close()
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
