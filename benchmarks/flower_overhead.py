"""Round wall time in-process against the same federation over Flower, on loopback.

    python benchmarks/flower_overhead.py [--sites 2 5] [--rounds 3] [--latency 0.2] [--default-isolation]

Every client is a site with a data file of its own and one task of its own; every LLM call
goes to one local OpenAI-compatible endpoint answering after ``--latency`` seconds (the
simulated script over HTTP). The in-process run and the Flower run use the same files,
models and config (federated evaluation, 1 local step, batch 3, concat), so the difference
per round is what Flower adds: a SuperLink, a SuperNode per site (``fedtextgrad-graph
site``), and a train and a validation message per site and round.
``--default-isolation`` adds Flower's default SuperNode (a fresh ClientApp process per
message) for the smallest federation. Per-round time: between ``round_finished`` events.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' OpenAI-compatible server and data helpers

from tests.integration.flower_sites import write_site
from tests.integration.openai_server import OpenAICompatibleServer
from tests.integration.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent

CLI = [sys.executable, "-m", "fedtextgrad_graph"]
BIN = Path(sys.executable).parent
COMMON = """
[run]
name = "bench"
max_concurrency = 64

[federation]
partition = "heterogeneous"
clients = [{clients}]

[client]
local_steps = 1
batch_size = 3

[aggregation]
strategy = "concat"

[evaluation]
mode = "federated"
baseline = false
test = false

[convergence]
max_rounds = {rounds}
unchanged_rounds = 1000
"""


def _write(root: Path, sites: int, rounds: int, base_url: str) -> tuple[Path, Path, list[Path]]:
    ids = [f"site-{i + 1}" for i in range(sites)]
    clients = ", ".join(f'{{ id = "{cid}", task = "t{i}" }}' for i, cid in enumerate(ids))
    common = COMMON.format(clients=clients, rounds=rounds)
    local_tasks, server_tasks, site_files = [], [], []
    for i, cid in enumerate(ids):
        site = write_site(root / cid, cid, base_url, seed=100 + i, model="openai:bench")
        site_files.append(site)
        split = "{ train = [0, 12], validation = [12, 18], test = [18, 24] }"  # as in the site file
        local_tasks.append(f'[tasks.t{i}]\nformat = "bbh"\npath = "{site.parent / "data.json"}"\nsplit = {split}\n')
        server_tasks.append(f"[tasks.t{i}]\n")
    local = root / "local.toml"
    local.write_text(common + "\n".join(local_tasks) + f'\n[models]\nmodel = "openai:bench"\nbase_url = "{base_url}"\n')
    server = root / "server.toml"
    server.write_text(common + "\n".join(server_tasks) + '\n[models]\nmodel = "simulated"\n')
    return local, server, site_files


def _per_round(run_dir: Path) -> tuple[float, float]:
    """Seconds of the first round, and the mean of the later ones (between ``round_finished``
    events: the first round also waits for the sites to be identified)."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    started = next(e["time"] for e in events if e["event"] == "round_started")
    finished = [e["time"] for e in events if e["event"] == "round_finished"]
    return finished[0] - started, (finished[-1] - finished[0]) / (len(finished) - 1)


def _calls_per_round(run_dir: Path) -> float:
    history = json.loads((run_dir / "results.json").read_text())["history"]
    return float(sum(r["llm_calls"] for r in history) / len(history))


def _start(command: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, cwd=cwd, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})}
    )


def _wait_text(log: Path, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"no {text!r} in {log} after {timeout_s}s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _flower(root: Path, server: Path, site_files: list[Path], *, default_isolation: bool) -> Path:
    root.mkdir()
    name = root.name  # the run id, and each site's log for this variant
    port = free_port()
    address = f"127.0.0.1:{port}"
    processes = [_start([*CLI, "superlink", "--insecure", "--port", str(port), "--state-dir", str(root / "link")], root / "link.out", root)]
    try:
        _wait_text(root / "link.out", "SuperLink ready", 60)
        for site in site_files:
            if default_isolation:  # Flower's own SuperNode: a new ClientApp process per message
                command = [str(BIN / "flower-supernode"), "--insecure", "--superlink", address, "--port", str(free_port()),
                           "--node-config", f'site-config="{site}"']  # fmt: skip
                processes.append(_start(command, site.parent / f"{name}.out", site.parent, {"FLWR_HOME": str(site.parent / "flwr")}))
            else:
                command = [*CLI, "site", str(site), "--superlink", address, "--insecure"]
                processes.append(_start(command, site.parent / f"{name}.out", site.parent))
        if not default_isolation:
            for site in site_files:
                _wait_text(site.parent / f"{name}.out", "serving rounds", 120)
        command = [*CLI, "run", str(server), "--superlink", address, "--insecure", "--server-secret", str(root / "link" / "server.secret"), "--run-id", name]
        run = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
        if run.returncode:
            raise RuntimeError(run.stdout + run.stderr)
        return root / "runs" / name
    finally:
        _stop(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--rounds", type=int, default=4, help="at least 2: the first round is reported apart")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per LLM call at the endpoint")
    parser.add_argument("--default-isolation", action="store_true", help="also Flower's default SuperNode, smallest federation")
    args = parser.parse_args()
    table = Table(
        title=f"seconds per round (rounds 2-{args.rounds}; round 1 in brackets): 1 local step, batch 3, "
        f"federated evaluation (2 messages per site and round), {args.latency}s per LLM call"
    )
    for column in ("sites", "LLM calls / round", "in-process", "Flower, fedtextgrad-graph site", "Flower overhead", "per message", "Flower, default SuperNode"):
        table.add_column(column, justify="right")
    with OpenAICompatibleServer(latency_s={"bench": args.latency}) as endpoint:
        for sites in args.sites:
            with tempfile.TemporaryDirectory(prefix="fedtextgrad-flower-bench-") as tmp:
                root = Path(tmp)
                local, server, site_files = _write(root, sites, args.rounds, endpoint.base_url)
                done = subprocess.run([*CLI, "run", str(local), "--run-id", "local"], cwd=root, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise RuntimeError(done.stdout + done.stderr)
                first_local, local_round = _per_round(root / "runs" / "local")
                first_flower, flower_round = _per_round(_flower(root / "warm", server, site_files, default_isolation=False))
                default = "-"
                if args.default_isolation and sites == min(args.sites):
                    first, later = _per_round(_flower(root / "default", server, site_files, default_isolation=True))
                    default = f"{later:.1f} ({first:.1f})"
                table.add_row(
                    str(sites),
                    f"{_calls_per_round(root / 'runs' / 'local'):.0f}",
                    f"{local_round:.1f} ({first_local:.1f})",
                    f"{flower_round:.1f} ({first_flower:.1f})",
                    f"+{flower_round - local_round:.1f}",
                    f"+{(flower_round - local_round) / 2:.1f}",
                    default,
                )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
