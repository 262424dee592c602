"""What a run killed in the middle of its baseline scoring pays again when it resumes.

    python benchmarks/scoring_resume.py [--examples 400] [--kill-at 0.4] [--shard-sizes 10 400]

The CLI runs the offline simulated model (50 ms per call, ``max_concurrency = 8``) on a
baseline of ``--examples`` server-held validation examples; once the run's events show
``--kill-at`` of the baseline's calls made, the process gets SIGKILL, and ``resume`` finishes
the run. Per ``[evaluation] shard_size``: the baseline calls made before the kill, those the
resumed process made, and the calls paid twice (their sum less the phase's calls). A shard
size of at least ``--examples`` is one shard per phase: how a phase resumed before shards.
Counts of calls only: the machine's load does not change them.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _rounds import write_data
from rich.console import Console
from rich.table import Table

MAX_CONCURRENCY = 8
CLIENTS = 2
POLL_S = 0.01
TIMEOUT_S = 600

CONFIG = """
[run]
name = "scoring"
max_concurrency = {max_concurrency}

[tasks.counting]
format = "bbh"
path = "data.json"
split = {{ train = [0, {train}], validation = [{train}, {validation_end}], test = [{validation_end}, {test_end}] }}

[federation]
num_clients = {clients}

[client]
local_steps = 1
batch_size = 3

[convergence]
max_rounds = 1

[evaluation]
shard_size = {shard_size}
test = false

[models]
model = "simulated"
kwargs = {{ latency_s = 0.05 }}
"""


def _command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "fedtextgrad_graph", *map(str, args)]


def _events(run_dir: Path) -> list[dict[str, Any]]:
    """The run's events so far (a line still being written is skipped)."""
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


def _baseline_calls(run_dir: Path, pid: int) -> int:
    """The baseline's calls (the server's, round 0) that process ``pid`` made."""
    return sum(1 for e in _events(run_dir) if e["event"] == "llm_call" and e["pid"] == pid and e["round"] == 0 and e["client_id"] is None)


def _kill_and_resume(folder: Path, examples: int, kill_at: int, shard_size: int) -> tuple[int, int]:
    """Baseline calls before the kill, and those of the resumed process."""
    train = CLIENTS * 3
    config = folder / "scoring.toml"
    config.write_text(
        CONFIG.format(
            max_concurrency=MAX_CONCURRENCY,
            train=train,
            validation_end=train + examples,
            test_end=train + examples + 10,
            clients=CLIENTS,
            shard_size=shard_size,
        ),
        encoding="utf-8",
    )
    write_data(folder / "data.json", CLIENTS, scored=examples + 10)
    run_dir = folder / "runs" / "killed"
    with (folder / "cli.log").open("a", encoding="utf-8") as log:
        process = subprocess.Popen(_command("run", config, "--run-id", "killed"), cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while _baseline_calls(run_dir, process.pid) < kill_at:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the run ended or stalled before {kill_at} baseline calls; see {folder / 'cli.log'}")
            time.sleep(POLL_S)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    before = _baseline_calls(run_dir, process.pid)
    resumed = subprocess.run(_command("resume", "killed"), cwd=folder, capture_output=True, text=True, check=False, timeout=TIMEOUT_S)
    if resumed.returncode != 0:
        raise SystemExit(f"resume failed: {resumed.stdout}{resumed.stderr}")
    (resumed_pid,) = {e["pid"] for e in _events(run_dir) if "pid" in e} - {process.pid}
    return before, _baseline_calls(run_dir, resumed_pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=400, help="validation examples the baseline scores")
    parser.add_argument("--kill-at", type=float, default=0.4, help="fraction of the baseline's calls made when the run is killed")
    parser.add_argument("--shard-sizes", type=int, nargs="+", default=[10, 400])
    args = parser.parse_args()
    if args.examples < 1 or not 0 < args.kill_at < 1 or min(args.shard_sizes) < 1:
        parser.error("--examples and --shard-sizes must be at least 1, --kill-at between 0 and 1")
    kill_at = int(args.examples * args.kill_at)
    table = Table(title=f"baseline of {args.examples} calls (50 ms each, {MAX_CONCURRENCY} in flight), SIGKILL after {kill_at}, then resume")
    for column in ("shard_size", "shards", "calls before the kill", "calls after the resume", "paid twice", "phase calls"):
        table.add_column(column, justify="right")
    for shard_size in args.shard_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            before, after = _kill_and_resume(Path(tmp), args.examples, kill_at, shard_size)
        shards = -(-args.examples // shard_size)
        table.add_row(str(shard_size), str(shards), str(before), str(after), str(before + after - args.examples), str(args.examples))
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
