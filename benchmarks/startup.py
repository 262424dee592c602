"""Startup: seconds from a fresh process to the point of use, median of N runs.

    python benchmarks/startup.py --data-dir DATA [--runs 5]

Rows: ``python -c pass`` (the interpreter), ``import langgraph.graph`` (the floor: a run needs
the graph library), ``import fedtextgrad_graph``, the CLI's ``--help``, and ``run`` to its first
LLM call: ``fedtextgrad-graph run examples/paper_heterogeneous.toml --model openai:bench
--base-url URL --data-dir DATA`` against ``benchmarks/latency_endpoint.py``, from starting the
process to the endpoint receiving the first request (the baseline scoring); the run is then
stopped. DATA: as for benchmarks/paper_protocol.py.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from latency_endpoint import start_endpoint
from rich.console import Console
from rich.table import Table

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "paper_heterogeneous.toml"
POLL_S = 0.01


def _timed(arguments: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *arguments], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _to_first_call(data_dir: Path) -> float:
    endpoint = start_endpoint(0.2)
    try:
        with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
            command = [sys.executable, "-m", "fedtextgrad_graph", "run", str(CONFIG), "--model", "openai:bench"]
            command += ["--base-url", endpoint.base_url, "--data-dir", str(data_dir), "--runs-dir", str(Path(tmp) / "runs")]
            started = time.time()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
            try:
                while (first := endpoint.stats()["first_request_at"]) is None:
                    if process.poll() is not None:
                        raise RuntimeError("the run ended before its first LLM call")
                    time.sleep(POLL_S)
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        endpoint.stop()
    return float(first) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    measures: dict[str, Callable[[], float]] = {
        "python -c pass": lambda: _timed(["-c", "pass"]),
        "import langgraph.graph": lambda: _timed(["-c", "import langgraph.graph"]),
        "import fedtextgrad_graph": lambda: _timed(["-c", "import fedtextgrad_graph"]),
        "CLI --help": lambda: _timed(["-m", "fedtextgrad_graph", "--help"]),
        "CLI run to first LLM call": lambda: _to_first_call(args.data_dir.resolve()),
    }
    table = Table(title=f"startup, median of {args.runs} runs")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    for what, measure in measures.items():
        table.add_row(what, f"{statistics.median(measure() for _ in range(args.runs)):.2f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
