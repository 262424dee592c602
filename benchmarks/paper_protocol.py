"""The paper's heterogeneous protocol through the CLI, against an endpoint with a fixed latency.

    python benchmarks/paper_protocol.py --data-dir DATA [--latency 0.2] [--concurrency default 8 64]

DATA holds the real data (``bbh/object_counting.json``, ``bbh/multistep_arithmetic_two.json``,
``gsm8k/train.jsonl``, ``gsm8k/test.jsonl``; see examples/paper_heterogeneous.toml). The run is
examples/paper_heterogeneous.toml with 1 round and K = 4 local steps (B = 3, uid, 3 clients,
validation and test 100 examples per task), each setting in a fresh process:
``fedtextgrad-graph run CONFIG --model openai:bench --base-url URL --data-dir DATA``, against
``benchmarks/latency_endpoint.py`` (its own process, on a free loopback port).

Critical path, counted from the protocol (the longest chain of calls that wait on each other):
baseline 2 (a multistep-arithmetic answer, then its judge), each local step 7 for the
judge-scored client (forward, judge, backward through the loss, backward to the prompt, TGD
step, proximal forward, proximal judge), the merge's aggregator calls (sequential), validation 2,
test 2: 7 K + 6 + merge calls, 35 at K = 4 with one merge call (the baseline is scored while the
first round trains, so its phase lies inside the training's). The "research code" row is the
paper's sequential code: calls x latency.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from latency_endpoint import start_endpoint
from rich.console import Console
from rich.table import Table

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "paper_heterogeneous.toml"
LOCAL_STEPS = 4
CHAIN_PER_STEP = 7
CHAIN_BASELINE_VALIDATION_TEST = 6


def _config(folder: Path, concurrency: str) -> Path:
    text = CONFIG.read_text(encoding="utf-8")
    text = text.replace("\nlocal_steps = 3 ", f"\nlocal_steps = {LOCAL_STEPS} ").replace("\nmax_rounds = 3 ", "\nmax_rounds = 1 ")
    if concurrency != "default":
        text = text.replace("\nseed = 0\n", f"\nseed = 0\nmax_concurrency = {int(concurrency)}\n")
    path = folder / "paper.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _phase(calls: list[dict[str, Any]]) -> float:
    if not calls:
        return 0.0
    return float(max(c["time"] for c in calls) - min(c["time"] - c["seconds"] for c in calls))


def _phases(events: list[dict[str, Any]]) -> tuple[dict[str, float], int]:
    calls = [e for e in events if e["event"] == "llm_call"]
    server = [c for c in calls if c["client_id"] is None]
    groups = {
        "baseline": [c for c in server if c["round"] == 0],
        "train": [c for c in calls if c["client_id"] is not None],
        "merge": [c for c in server if c["role"] == "aggregator"],
        "validation": [c for c in server if c["round"] not in (0, None) and c["role"] != "aggregator"],
        "test": [c for c in server if c["round"] is None],
    }
    return {name: _phase(group) for name, group in groups.items()}, len(groups["merge"])


def run_once(data_dir: Path, latency: float, concurrency: str) -> dict[str, Any]:
    endpoint = start_endpoint(latency)
    try:
        with tempfile.TemporaryDirectory(prefix="paper-protocol-") as tmp:
            folder = Path(tmp)
            config = _config(folder, concurrency)
            command = [sys.executable, "-m", "fedtextgrad_graph", "run", str(config), "--model", "openai:bench"]
            command += ["--base-url", endpoint.base_url, "--data-dir", str(data_dir), "--runs-dir", str(folder / "runs")]
            started = time.time()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=folder)
            wall = time.time() - started
            stats = endpoint.stats()
            events_path = next((folder / "runs").glob("*/events.jsonl"))
            events = [json.loads(line) for line in events_path.read_text(encoding="utf-8").splitlines()]
    finally:
        endpoint.stop()
    phases, merge_calls = _phases(events)
    chain = LOCAL_STEPS * CHAIN_PER_STEP + CHAIN_BASELINE_VALIDATION_TEST + merge_calls
    return {
        "wall": wall,
        "startup": stats["first_request_at"] - started,
        "calls": stats["requests"],
        "critical": chain * latency,
        "phases": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", nargs="+", default=["default", "8", "64"], help="max_concurrency values ('default': unset)")
    args = parser.parse_args()
    table = Table(title=f"paper heterogeneous protocol, 1 round, K = {LOCAL_STEPS}, {args.latency:g} s per call")
    for column in ("setting", "wall (s)", "startup to first call (s)", "calls", "critical path (s)", "wall / critical", "phases (s)"):
        table.add_column(column, justify="left" if column in ("setting", "phases (s)") else "right")
    calls = 0
    for concurrency in args.concurrency:
        result = run_once(args.data_dir.resolve(), args.latency, concurrency)
        calls = result["calls"]
        phases = " ".join(f"{name} {seconds:.1f}" for name, seconds in result["phases"].items())
        table.add_row(
            f"max_concurrency {concurrency}",
            f"{result['wall']:.1f}",
            f"{result['startup']:.2f}",
            str(result["calls"]),
            f"{result['critical']:.1f}",
            f"{result['wall'] / result['critical']:.2f}",
            phases,
        )
    table.add_row("research code (sequential)", f"{calls * args.latency:.1f}", "", str(calls), "", "", "calls x latency")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
