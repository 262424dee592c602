"""The ``processes`` transport: clients in worker processes give the results the in-process
clients give; a worker that dies costs its clients one round; one that cannot set up says why."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel
from fedtextgrad_graph.config import load_config
from fedtextgrad_graph.models import LLMCallRecord
from fedtextgrad_graph.runs import RunPaused, stream_run
from fedtextgrad_graph.transport.processes.server_transport import ProcessTransport

from .cli import cli
from .openai_server import OpenAICompatibleServer

pytestmark = pytest.mark.integration

PROCESSES = '\n[transport]\nkind = "processes"\n\n[transport.processes]\nworkers = 2\n'
ROLES = ("task", "optimizer", "aggregator", "judge")


def _results(tmp_path: Path, run_id: str) -> dict[str, Any]:
    results = json.loads((tmp_path / "runs" / run_id / "results.json").read_text(encoding="utf-8"))
    assert results.pop("run_id") == run_id
    return results


def _llm_call_events(tmp_path: Path, run_id: str) -> int:
    lines = (tmp_path / "runs" / run_id / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return sum(json.loads(line)["event"] == "llm_call" for line in lines)


def test_worker_processes_give_the_results_of_in_process_clients(make_config, tmp_path):
    local = make_config(clients=4, rounds=2, local_steps=2)
    processes = make_config(clients=4, rounds=2, local_steps=2, extra=PROCESSES, name="processes.toml")
    requests = []
    with OpenAICompatibleServer() as server:
        for run_id, config in (("local", local), ("processes", processes)):
            before = len(server.requests)
            done = cli("run", config, "--model", "openai:local", "--base-url", server.base_url, "--run-id", run_id, cwd=tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
            requests.append(len(server.requests) - before)
    in_process, in_workers = _results(tmp_path, "local"), _results(tmp_path, "processes")
    assert in_workers["config"]["transport"]["kind"] == "processes"
    in_workers["config"]["transport"] = in_process["config"]["transport"]
    assert in_workers == in_process
    assert in_process["llm_calls"] > 0
    # Every worker's LLM call reached the run's call log, as an in-process client's does.
    assert _llm_call_events(tmp_path, "processes") == _llm_call_events(tmp_path, "local")
    assert requests[0] == requests[1] > 0  # the workers' models reached the endpoint


async def _run(config_path: Path, *, model: Any, on_call: Any = None, on_runtime: Any = None) -> dict[str, Any]:
    """Run the config through the Python API; ``model`` (if any) for every role."""
    models = dict.fromkeys(ROLES, model) if model is not None else None
    runtime = FederationRuntime.create(load_config(config_path), models=models, on_call=on_call)
    if on_runtime is not None:
        on_runtime(runtime)
    try:
        return await stream_run(runtime, InMemorySaver(), "workers", resume=False)
    finally:
        await runtime.aclose()


def test_a_killed_worker_costs_its_clients_one_round(make_config):
    config = make_config(clients=4, rounds=2, local_steps=2, extra=PROCESSES)
    transport: ProcessTransport | None = None
    killed: list[int] = []

    def keep(runtime: FederationRuntime) -> None:
        nonlocal transport
        assert isinstance(runtime.transport, ProcessTransport)
        transport = runtime.transport

    def kill_first_worker(record: LLMCallRecord) -> None:
        assert transport is not None
        pid, clients = transport.worker_processes[0]
        if not killed and record.client_id in clients and record.round == 1:
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # a process this test's run started
            killed.append(pid)

    final = asyncio.run(_run(config, model=SimulatedChatModel(latency_s=0.05), on_call=kill_first_worker, on_runtime=keep))
    assert transport is not None and killed
    (_, dealt), (_, others) = transport.worker_processes
    first, second = final["history"]
    assert sorted(first["dropped"]) == sorted(dealt)
    assert all(f"pid {killed[0]}" in reason for reason in first["dropped"].values()), first["dropped"]
    assert sorted(first["client_prompts"]) == sorted(others)
    # Started again for its clients' next request: the second round has every client.
    assert second["dropped"] == {} and len(second["client_prompts"]) == 4
    assert transport.worker_processes[0][0] != killed[0]


def _refuse_to_load() -> SimulatedChatModel:
    raise RuntimeError("this model only loads in the process that made it")


class ServerOnlyModel(SimulatedChatModel):
    """Pickles, but cannot be unpickled: a worker cannot set up its clients with it."""

    def __reduce__(self) -> Any:
        return (_refuse_to_load, ())


def test_a_worker_that_cannot_set_up_says_why_and_the_run_pauses(make_config):
    config = make_config(clients=2, rounds=1, extra=PROCESSES)
    with pytest.raises(RunPaused) as paused:
        asyncio.run(_run(config, model=ServerOnlyModel()))
    reasons = paused.value.pause["dropped"]
    assert sorted(reasons) == ["client-1", "client-2"]
    for reason in reasons.values():
        assert "could not set up its clients" in reason and "only loads in the process that made it" in reason


def test_a_workers_warnings_reach_the_servers_log(make_config, caplog):
    """An endpoint outage met while clients train is announced (and its end) as in-process."""
    with OpenAICompatibleServer() as server:
        models = f'[models]\nmodel = "openai:local"\nbase_url = "{server.base_url}"\nretry_backoff_s = 0.2\n'
        config = make_config(clients=2, rounds=1, models=models, extra=PROCESSES)

        def outage_once_clients_call(record: LLMCallRecord) -> None:
            if record.client_id is not None and not server.faults_served:
                server.outage(1.0)

        with caplog.at_level(logging.WARNING, logger="fedtextgrad_graph"):
            final = asyncio.run(_run(config, model=None, on_call=outage_once_clients_call))
    assert final["stop_reason"] and server.faults_served
    lines = [record.getMessage() for record in caplog.records if record.name == "fedtextgrad_graph.models.gateway"]
    assert any("retrying each call" in line for line in lines), lines
    assert any("answers again" in line for line in lines), lines
