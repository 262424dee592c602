"""LLM calls per second at zero endpoint latency, and one 200-client round against its bound.

    python benchmarks/throughput.py [--clients 10 50] [--round-clients 200] [--latency 0.2] [--max-concurrency 256] [--repeats 5]
        [--transports local processes]

Table 1: every LLM call goes to the simulated model with no latency, so the wall time and the
CPU time per call are the orchestration's own cost (gateway, TextGrad bridge, LangGraph,
LangChain's ``ainvoke``); each row is the median of ``--repeats`` rounds after a warm-up round
(single rounds of a fraction of a second vary by a third here). Table 2: a round (K = 1, B = 3, uid, as in
benchmarks/round_concurrency.py, whose docstring derives the 8-call critical path) at a fixed
latency, for each transport (``local``: every client in this process; ``processes``: clients in
one worker process per CPU); its bound is max(critical path, calls x latency / concurrency). It is
the second round of a two-round run, timed from its ``round_started`` event to its
``round_finished``: the first round pays for first-use imports and the workers' start.
Uses examples/data/object_counting.json by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console
from rich.table import Table

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.events import RunEvent
from fedtextgrad_graph.models import LLMCallRecord
from fedtextgrad_graph.runs import stream_run
from fedtextgrad_graph.site._textgrad import import_textgrad

CRITICAL_PATH_CALLS = 8
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "data"


def _data(clients: int, source: Path, into: Path) -> Path:
    """A copy of ``source``'s examples repeated until every client gets a batch of 3 to train on."""
    examples = json.loads(source.read_text())["examples"]
    needed = 3 * clients + 10
    repeated = (examples * (needed // len(examples) + 1))[:needed]
    (into / "object_counting.json").write_text(json.dumps({"examples": repeated}))
    return into


def _config(clients: int, data_dir: Path, max_concurrency: int) -> dict[str, Any]:
    train = 3 * clients
    return {
        "run": {"name": "bench", "max_concurrency": max_concurrency, "data_dir": str(data_dir)},
        "tasks": {
            "counting": {
                "format": "bbh",
                "path": "object_counting.json",
                "split": {"train": [0, train], "validation": [train, train + 5], "test": [train + 5, train + 10]},
            }
        },
        "federation": {"num_clients": clients},
        "client": {"local_steps": 1, "batch_size": 3},
        "aggregation": {"strategy": "uid", "repair_tries": 0},
        "evaluation": {"baseline": False, "test": False},
        "convergence": {"max_rounds": 1},
    }


async def _measure(clients: int, latency: float, data_dir: Path, max_concurrency: int) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of this process, and LLM calls of one round."""
    calls = 0

    def count(_record: LLMCallRecord) -> None:
        nonlocal calls
        calls += 1

    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(_config(clients, _data(clients, data_dir / "object_counting.json", Path(tmp)), max_concurrency), source="benchmark")
        model = SimulatedChatModel(latency_s=latency)
        models = dict.fromkeys(("task", "optimizer", "aggregator", "judge"), model)
        runtime = FederationRuntime.create(config, models=models, on_call=count)
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            await stream_run(runtime, InMemorySaver(), f"bench-{clients}", resume=False)
        finally:
            await runtime.aclose()
        return time.perf_counter() - started, time.process_time() - cpu_started, calls


def _throughput_table(clients: list[int], data_dir: Path, max_concurrency: int, repeats: int) -> Table:
    title = f"zero endpoint latency, one round, K = 1, B = 3, max_concurrency {max_concurrency}, median of {repeats} rounds"
    table = Table(title=title)
    for column in ("endpoint", "clients", "calls", "wall (s)", "calls/s", "CPU ms per call", "calls/s min-max"):
        table.add_column(column, justify="right")
    asyncio.run(_measure(clients[0], 0.0, data_dir, max_concurrency))  # warm-up: first-use imports and caches
    for n in clients:
        runs = sorted((asyncio.run(_measure(n, 0.0, data_dir, max_concurrency)) for _ in range(repeats)), key=lambda run: run[0])
        wall, cpu, calls = runs[len(runs) // 2]
        rates = [run[2] / run[0] for run in runs]
        spread = f"{min(rates):.0f}-{max(rates):.0f}"
        table.add_row("simulated", str(n), str(calls), f"{wall:.2f}", f"{calls / wall:.0f}", f"{1000 * cpu / calls:.2f}", spread)
    return table


async def _second_round(clients: int, latency: float, data_dir: Path, max_concurrency: int, transport: str) -> tuple[float, int]:
    """Wall seconds and LLM calls of the second round of a two-round run: the first one warms
    up (imports, caches, the worker processes of the ``processes`` transport)."""
    calls = 0
    started: dict[int, tuple[float, int]] = {}
    finished: dict[int, tuple[float, int]] = {}

    def count(_record: LLMCallRecord) -> None:
        nonlocal calls
        calls += 1

    def mark(event: RunEvent) -> None:
        if event.kind in ("round_started", "round_finished"):
            marks = started if event.kind == "round_started" else finished
            marks[event.data["round"]] = (time.perf_counter(), calls)

    with tempfile.TemporaryDirectory() as tmp:
        raw = _config(clients, _data(clients, data_dir / "object_counting.json", Path(tmp)), max_concurrency)
        raw["convergence"] = {"max_rounds": 2, "unchanged_rounds": 0}
        raw["transport"] = {"kind": transport}
        model = SimulatedChatModel(latency_s=latency)
        models = dict.fromkeys(("task", "optimizer", "aggregator", "judge"), model)
        runtime = FederationRuntime.create(parse_config(raw, source="benchmark"), models=models, on_call=count)
        try:
            await stream_run(runtime, InMemorySaver(), f"bench-{transport}-{clients}", resume=False, on_event=mark)
        finally:
            await runtime.aclose()
    (start, calls_before), (end, calls_after) = started[2], finished[2]
    return end - start, calls_after - calls_before


def _round_table(clients: int, latency: float, data_dir: Path, max_concurrency: int, transports: list[str]) -> Table:
    title = f"the second round of two, K = 1, B = 3, uid, simulated endpoint answering after {latency}s"
    table = Table(title=title)
    columns = ("transport", "clients", "calls", "critical path (s)", "calls x latency / concurrency (s)", "bound (s)", "wall (s)", "wall / bound")
    for column in columns:
        table.add_column(column, justify="right")
    for transport in transports:
        wall, calls = asyncio.run(_second_round(clients, latency, data_dir, max_concurrency, transport))
        critical = CRITICAL_PATH_CALLS * latency
        spread = calls * latency / max_concurrency
        bound = max(critical, spread)
        table.add_row(transport, str(clients), str(calls), f"{critical:.1f}", f"{spread:.1f}", f"{bound:.1f}", f"{wall:.2f}", f"{wall / bound:.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 50], help="clients per zero-latency round")
    parser.add_argument("--round-clients", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per LLM call in the bounded round")
    parser.add_argument("--max-concurrency", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5, help="zero-latency rounds per row (the median is shown)")
    parser.add_argument("--transports", nargs="+", default=["local", "processes"], help="transports of the bounded round")
    parser.add_argument("--data-dir", type=Path, default=EXAMPLES)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.latency <= 0:
        parser.error("--latency must be more than 0: the bounded round's bound is measured in calls x latency")
    import_textgrad()
    console = Console(width=160)
    console.print(_throughput_table(args.clients, args.data_dir, args.max_concurrency, args.repeats))
    console.print(_round_table(args.round_clients, args.latency, args.data_dir, args.max_concurrency, args.transports))


if __name__ == "__main__":
    main()
