"""How long a Redis outage a checkpoint write rides out.

    python benchmarks/redis_outage.py [--outages 0.2 5 10 20]

For each outage: a persistent redis-server (AOF, fsync always) on a free local port, an open
``AsyncRedisSaver``, the server SIGKILLed, one ``aput`` started, and the server restarted on
its data after the outage. Prints whether the write went through and how long it took.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

from langgraph.checkpoint.base import Checkpoint
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedtextgrad_graph import create_checkpointer
from tests.integration.redis_server import RedisServer

CHECKPOINT = Checkpoint(v=4, id="1", ts="", channel_values={"x": 1}, channel_versions={"x": "1"}, versions_seen={}, updated_channels=None)


async def _trial(outage_s: float) -> tuple[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory), persistent=True).start()
        restart = threading.Timer(outage_s, server.start)
        try:
            async with create_checkpointer(server.url()) as saver:
                server.kill()
                restart.start()
                started = time.monotonic()
                try:
                    await saver.aput({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, CHECKPOINT, {}, {"x": "1"})
                    return "written", time.monotonic() - started
                except Exception as exc:  # noqa: BLE001 - the outcome is the measurement
                    return f"failed: {type(exc).__name__}", time.monotonic() - started
        finally:
            restart.join()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", type=float, nargs="+", default=[0.2, 5.0, 10.0, 20.0])
    args = parser.parse_args()
    table = Table(title="one aput during a Redis outage")
    for column in ("outage (s)", "outcome", "aput took (s)"):
        table.add_column(column, justify="right")
    for outage in args.outages:
        outcome, took = asyncio.run(_trial(outage))
        table.add_row(f"{outage:g}", outcome, f"{took:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
