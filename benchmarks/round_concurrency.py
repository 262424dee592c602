"""Wall time of one federated round against the critical path and the sequential sum of its LLM calls.

    python benchmarks/round_concurrency.py [--latency 0.5] [--clients 3 10] [--data-dir DIR]

Every LLM call goes to the simulated model with a fixed injected latency, so the sequential
sum is (calls x latency) and the critical path of a round with one local step is 8 calls long:
forward, backward through the metric, backward through the task call, TGD step, proximal
re-score, the validation screen's scoring of the uploads, aggregation, validation. Uses examples/data/object_counting.json by default.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console
from rich.table import Table

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.models import LLMCallRecord
from fedtextgrad_graph.runs import stream_run
from fedtextgrad_graph.site._textgrad import import_textgrad

CRITICAL_PATH_CALLS = 8
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "data"


def _config(clients: int, data_dir: Path, max_concurrency: int) -> dict[str, Any]:
    return {
        "run": {"name": "bench", "max_concurrency": max_concurrency, "data_dir": str(data_dir)},
        "tasks": {
            "counting": {
                "format": "bbh",
                "path": "object_counting.json",
                "split": {"train": [0, 30], "validation": [30, 35], "test": [35, 40]},
            }
        },
        "federation": {"num_clients": clients},
        "client": {"local_steps": 1, "batch_size": 3},
        # no repair tries: a uid merge that misses its targets would add one call per try to the path
        "aggregation": {"strategy": "uid", "repair_tries": 0},
        "evaluation": {"baseline": False, "test": False},
        "convergence": {"max_rounds": 1},
    }


async def _measure(clients: int, latency: float, data_dir: Path, max_concurrency: int) -> tuple[float, int]:
    calls = 0

    def count(_record: LLMCallRecord) -> None:
        nonlocal calls
        calls += 1

    config = parse_config(_config(clients, data_dir, max_concurrency), source="benchmark")
    model = SimulatedChatModel(latency_s=latency)
    models = dict.fromkeys(("task", "optimizer", "aggregator", "judge"), model)
    runtime = FederationRuntime.create(config, models=models, on_call=count)
    started = time.perf_counter()
    try:
        await stream_run(runtime, InMemorySaver(), f"bench-{clients}", resume=False)
    finally:
        await runtime.aclose()
    return time.perf_counter() - started, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per LLM call (more than 0: the ratios divide by it)")
    parser.add_argument("--clients", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--max-concurrency", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=EXAMPLES)
    args = parser.parse_args()
    if args.latency <= 0:
        parser.error("--latency must be more than 0: the critical path and the speed-up are measured in calls x latency")
    import_textgrad()
    table = Table(title=f"one round, 1 local step, batch 3, uid aggregation, {args.latency}s per LLM call")
    for column in ("clients", "LLM calls", "sequential sum (s)", "critical path (s)", "wall time (s)", "wall / critical", "speed-up vs sequential"):
        table.add_column(column, justify="right")
    for clients in args.clients:
        wall, calls = asyncio.run(_measure(clients, args.latency, args.data_dir, args.max_concurrency))
        sequential = calls * args.latency
        critical = CRITICAL_PATH_CALLS * args.latency
        table.add_row(
            str(clients), str(calls), f"{sequential:.1f}", f"{critical:.1f}", f"{wall:.2f}", f"{wall / critical:.2f}", f"{sequential / wall:.1f}x"
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
