"""Checkpoint bytes per round against the number of rounds: SQLite and Redis.

    python benchmarks/checkpoint_growth.py [--clients 50] [--rounds 1 2 4 8 16] [--redis-url redis://...]

Runs the real round graph (in-process clients, simulated model, one local step, no baseline or
test) for each round count with each checkpointer, and prints the checkpoints written, the bytes
stored and the bytes per round, with its ratio to the first round count's figure, and the bytes
added per round since the previous row: flat bytes per round mean a checkpoint does not store the
growing history again. (The first round stores less than later ones with the simulated model:
its clients start from the short initial prompt, later rounds from the longer merged one.) Stored bytes are the SQLite
tables' checkpoint, metadata and write blobs, and the Redis keys' ``MEMORY USAGE``. Without
``--redis-url`` (or ``REDIS_URL``) a redis-server is started on a free local port.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import redis
from _checkpoint_bench import redis_bytes, redis_server
from _rounds import round_config, write_data
from rich.console import Console
from rich.table import Table

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, create_checkpointer
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.runs import stream_run
from fedtextgrad_graph.site._textgrad import import_textgrad


async def _run(config: dict[str, Any], url: str) -> int:
    """Run to the end; return the number of checkpoints written."""
    cfg = parse_config(config, source="benchmark")
    model = SimulatedChatModel()
    runtime = FederationRuntime.create(cfg, models=dict.fromkeys(("task", "optimizer", "aggregator", "judge"), model))
    puts = 0
    try:
        async with create_checkpointer(url) as saver:
            aput = saver.aput

            async def counted(*args: Any, **kwargs: Any) -> Any:
                nonlocal puts
                puts += 1
                return await aput(*args, **kwargs)

            saver.aput = counted  # type: ignore[method-assign]
            await stream_run(runtime, saver, f"bench-{uuid.uuid4().hex[:8]}", resume=False)
    finally:
        await runtime.aclose()
    return puts


def sqlite_bytes(path: Path) -> int:
    """Bytes of the checkpoints, their metadata and the pending writes stored in a SQLite file."""
    with sqlite3.connect(path) as db:
        (checkpoints,) = db.execute("SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints").fetchone()
        (writes,) = db.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()
    return int(checkpoints) + int(writes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()
    import_textgrad()
    table = Table(title=f"checkpoint bytes per round ({args.clients} clients, 1 local step, simulated model)")
    for column in ("store", "rounds", "checkpoints", "bytes total", "bytes/round", "ratio", "added/round"):
        table.add_column(column, justify="right")
    with redis_server(args.redis_url) as base_url, tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        write_data(data_dir / "data.json", args.clients)
        client = redis.Redis.from_url(base_url)
        for store in ("SQLite", "Redis"):
            first: float | None = None
            previous = (0, 0)
            for rounds in args.rounds:
                config = round_config(args.clients, rounds, data_dir)
                if store == "SQLite":
                    db = tmp_path / f"sqlite-{rounds}.sqlite"
                    puts = asyncio.run(_run(config, sqlite_url(db)))
                    stored = sqlite_bytes(db)
                else:
                    prefix = f"bench-{uuid.uuid4().hex[:8]}"
                    puts = asyncio.run(_run(config, f"{base_url}?prefix={prefix}"))
                    stored = redis_bytes(client, prefix)
                per_round = stored / rounds
                first = first or per_round
                added = (stored - previous[1]) / (rounds - previous[0])
                previous = (rounds, stored)
                row = (f"{stored:,}", f"{per_round:,.0f}", f"{per_round / first:.2f}", f"{added:,.0f}")
                table.add_row(store, str(rounds), str(puts), *row)
        client.close()
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
