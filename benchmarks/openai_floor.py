"""What one scoring phase costs LangChain's ChatOpenAI alone: the floor under the paper protocol's phases.

    python benchmarks/openai_floor.py [--calls 400] [--latency 0.2] [--repeats 3]

``--calls`` concurrent ``ChatOpenAI.ainvoke`` calls (no fedtextgrad code on the call path)
against ``benchmarks/latency_endpoint.py`` answering after ``--latency`` seconds, as the
baseline, validation and test phases of ``benchmarks/paper_protocol.py`` make them (400 calls
each there). Wall time and this process's CPU per call, median of ``--repeats`` phases after a
warm-up, at CPython's default garbage-collector pace and at a run's
(:func:`fedtextgrad_graph.gc_pacing.paced_collection`). The endpoint runs in its own process;
its CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time

from langchain_openai import ChatOpenAI
from latency_endpoint import start_endpoint
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from fedtextgrad_graph.gc_pacing import paced_collection


async def _phase(model: ChatOpenAI, calls: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds of ``calls`` concurrent calls."""
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(model.ainvoke([("system", "Answer the question."), ("user", f"How many apples? {i}")]) for i in range(calls)))
    return time.perf_counter() - started, time.process_time() - cpu_started


async def _measure(base_url: str, calls: int, repeats: int) -> list[tuple[str, float, float]]:
    model = ChatOpenAI(model="floor", base_url=base_url, api_key=SecretStr("unused"), max_retries=0)
    await _phase(model, 50)  # warm-up: connections, first-use imports
    rows = []
    for pace, context in (("default (700)", contextlib.nullcontext), ("a run's (paced_collection)", paced_collection)):
        phases = []
        for _ in range(repeats):
            with context():
                phases.append(await _phase(model, calls))
        wall = statistics.median(p[0] for p in phases)
        cpu = statistics.median(p[1] for p in phases)
        rows.append((pace, wall, cpu))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.calls < 1 or args.repeats < 1 or args.latency < 0:
        parser.error("--calls and --repeats must be at least 1, --latency at least 0")
    endpoint = start_endpoint(args.latency)
    try:
        rows = asyncio.run(_measure(endpoint.base_url, args.calls, args.repeats))
    finally:
        endpoint.stop()
    table = Table(title=f"{args.calls} concurrent ChatOpenAI calls, endpoint answering after {args.latency:g} s, median of {args.repeats}")
    for column in ("GC pace", "wall (s)", "latency alone (s)", "CPU ms per call"):
        table.add_column(column, justify="right")
    for pace, wall, cpu in rows:
        table.add_row(pace, f"{wall:.2f}", f"{args.latency:.2f}", f"{1000 * cpu / args.calls:.2f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
