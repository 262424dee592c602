"""Peak memory of one in-process round with many clients.

    python benchmarks/scale_memory.py [--clients 10 100 500 1000] [--savers sqlite memory] [--top 0]

Each row is one round (K = 1 local step, batch B = 3, the default uid merge, server-held validation on
10 examples, no baseline or test) of N in-process clients on the simulated model with no latency,
run in a fresh subprocess so its peak RSS (``ru_maxrss``) is that round's alone; RSS per client
is the peak above the RSS before the round (the imports, textgrad's included) over N. Each client gets
3 training examples of a generated object-counting file (examples/make_data.py). ``sqlite``
checkpoints to a file in a temporary folder (its bytes, WAL included, are the last column);
``memory`` keeps the checkpoints in the process (LangGraph's ``InMemorySaver``; its bytes are the
serialized checkpoints and writes it holds). ``--top K`` also prints the K source lines that
allocated the most memory still held at the round's end (tracemalloc; slower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _rounds import round_config, write_data
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console
from rich.table import Table

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, create_checkpointer
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.models import LLMCallRecord
from fedtextgrad_graph.runs import stream_run
from fedtextgrad_graph.site._textgrad import import_textgrad


def _memory_bytes(saver: InMemorySaver) -> int:
    """The serialized checkpoints and pending writes an ``InMemorySaver`` holds."""
    total = 0
    for namespaces in saver.storage.values():
        for checkpoints in namespaces.values():
            for checkpoint, metadata, _parent in checkpoints.values():
                total += len(checkpoint[1]) + len(metadata[1])
    for writes in saver.writes.values():
        for _task, _channel, (_type, blob), _path in writes.values():
            total += len(blob)
    total += sum(len(blob) for _type, blob in saver.blobs.values())
    return total


async def _round(clients: int, saver_kind: str, folder: Path, top: int) -> dict[str, Any]:
    write_data(folder / "data.json", clients)
    calls = 0

    def count(_record: LLMCallRecord) -> None:
        nonlocal calls
        calls += 1

    config = parse_config(round_config(clients, 1, folder), source="benchmark")
    models = dict.fromkeys(("task", "optimizer", "aggregator", "judge"), SimulatedChatModel())
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the imports and the data
    if top:
        tracemalloc.start(1)
    started = time.perf_counter()
    runtime = FederationRuntime.create(config, models=models, on_call=count)
    saver: BaseCheckpointSaver[str]
    try:
        if saver_kind == "memory":
            saver = InMemorySaver()
            state = await stream_run(runtime, saver, "scale", resume=False)
            stored = _memory_bytes(saver)
        else:
            path = folder / "checkpoint.sqlite"
            async with create_checkpointer(sqlite_url(path)) as saver:
                state = await stream_run(runtime, saver, "scale", resume=False)
            stored = sum(p.stat().st_size for p in folder.glob("checkpoint.sqlite*"))
    finally:
        await runtime.aclose()
    wall = time.perf_counter() - started
    lines: list[str] = []
    if top:
        snapshot = tracemalloc.take_snapshot()
        for stat in snapshot.statistics("lineno")[:top]:
            frame = stat.traceback[0]
            lines.append(f"{stat.size / 2**20:8.1f} MB {stat.count:9d} blocks  {frame.filename}:{frame.lineno}")
    updates = len(state["history"][-1]["client_prompts"])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"calls": calls, "wall": wall, "stored": stored, "updates": updates, "top": lines, "before_kb": before_kb, "peak_kb": peak_kb}


def _child(clients: int, saver_kind: str, top: int) -> None:
    import_textgrad()
    with tempfile.TemporaryDirectory() as tmp:
        row = asyncio.run(_round(clients, saver_kind, Path(tmp), top))
    sys.stdout.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--savers", nargs="+", choices=["sqlite", "memory"], default=["sqlite", "memory"])
    parser.add_argument("--top", type=int, default=0, help="print the K source lines holding the most memory")
    parser.add_argument("--child", nargs=2, metavar=("CLIENTS", "SAVER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(int(args.child[0]), args.child[1], args.top)
        return
    table = Table(title="one in-process round: simulated model, no latency, K = 1, B = 3, uid merge")
    for column in ("clients", "checkpoint", "LLM calls", "wall (s)", "peak RSS (MB)", "RSS before the round (MB)", "RSS per client (KB)", "checkpoint bytes"):
        table.add_column(column, justify="right")
    console = Console(width=140)
    for saver_kind in args.savers:
        for clients in args.clients:
            command = [sys.executable, __file__, "--child", str(clients), saver_kind, "--top", str(args.top)]
            row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            if row["updates"] != clients:
                raise SystemExit(f"{clients} clients: {row['updates']} updates arrived")
            table.add_row(
                str(clients), saver_kind, str(row["calls"]), f"{row['wall']:.1f}", f"{row['peak_kb'] / 1024:.0f}",
                f"{row['before_kb'] / 1024:.0f}", f"{(row['peak_kb'] - row['before_kb']) / clients:.0f}", f"{row['stored']:,}",
            )
            for line in row["top"]:
                console.print(f"[dim]{clients} {saver_kind}[/dim] {line}")
    console.print(table)


if __name__ == "__main__":
    main()
