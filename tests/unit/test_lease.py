"""The run lease: one writer per run id, expiry of a holder on another host, take-over of a
dead holder on this host, and a lost lease stopping its run."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import SimulatedChatModel, create_checkpointer, load_config, run_federated
from fedtextgrad_graph.checkpoint import LeaseHolder, RunLeaseHeld, RunLeaseLost, hold_run_lease, sqlite_url
from fedtextgrad_graph.run_ids import check_run_id
from fedtextgrad_graph.runs import new_run_id

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}


def _write_record(db: Path, run_id: str, holder: LeaseHolder, expires_at: float) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO fedtextgrad_run_leases VALUES (?, ?, ?, ?)",
            (run_id, holder.token, holder.to_json(), expires_at),
        )


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def test_a_second_holder_is_refused_with_the_first_named():
    saver = InMemorySaver()
    async with hold_run_lease(saver, "r") as first:
        with pytest.raises(RunLeaseHeld) as info:
            async with hold_run_lease(saver, "r"):
                pass
        assert info.value.holder == first
        assert f"pid {first.pid} on {socket.gethostname()} since {first.since}" in str(info.value)
        async with hold_run_lease(saver, "other-run"):
            pass  # other runs are free
    async with hold_run_lease(saver, "r"):
        pass  # released on exit


async def test_released_when_the_body_fails():
    saver = InMemorySaver()
    with pytest.raises(KeyError):
        async with hold_run_lease(saver, "r"):
            raise KeyError("boom")
    async with hold_run_lease(saver, "r"):
        pass


async def test_sqlite_lease_is_seen_across_connections_and_expires_for_another_host(tmp_path):
    url = sqlite_url(tmp_path / "c.sqlite")
    async with create_checkpointer(url) as saver:
        async with hold_run_lease(saver, "r"):
            pass  # creates the table
        other_host = LeaseHolder("elsewhere", 1, "2026-01-01T00:00:00Z", "t" * 32)
        _write_record(tmp_path / "c.sqlite", "r", other_host, time.time() + 60)
    async with create_checkpointer(url) as saver:  # another process would open its own saver
        with pytest.raises(RunLeaseHeld, match="pid 1 on elsewhere since 2026-01-01T00:00:00Z"):
            async with hold_run_lease(saver, "r"):
                pass
        _write_record(tmp_path / "c.sqlite", "r", other_host, time.time() - 1)  # its heartbeat stopped
        async with hold_run_lease(saver, "r") as holder:
            with sqlite3.connect(tmp_path / "c.sqlite") as conn:
                (token,) = conn.execute("SELECT token FROM fedtextgrad_run_leases WHERE run_id = 'r'").fetchone()
            assert token == holder.token


async def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path):
    url = sqlite_url(tmp_path / "c.sqlite")
    async with create_checkpointer(url) as saver:
        async with hold_run_lease(saver, "r"):
            pass
        dead = LeaseHolder(socket.gethostname(), _dead_pid(), "2026-01-01T00:00:00Z", "d" * 32)
        _write_record(tmp_path / "c.sqlite", "r", dead, time.time() + 60)
        async with hold_run_lease(saver, "r"):
            pass


async def test_a_lost_lease_stops_the_body(tmp_path):
    url = sqlite_url(tmp_path / "c.sqlite")
    thief = LeaseHolder("elsewhere", 1, "2026-01-01T00:00:00Z", "x" * 32)
    async with create_checkpointer(url) as saver:
        with pytest.raises(RunLeaseLost, match="another process took over its lease"):
            async with hold_run_lease(saver, "r", renew_every_s=0.01):
                _write_record(tmp_path / "c.sqlite", "r", thief, time.time() + 60)
                await asyncio.sleep(30)  # cancelled by the heartbeat long before
        with sqlite3.connect(tmp_path / "c.sqlite") as conn:
            (token,) = conn.execute("SELECT token FROM fedtextgrad_run_leases WHERE run_id = 'r'").fetchone()
        assert token == thief.token  # the loser did not delete the new holder's record


async def test_run_federated_refuses_a_run_that_is_running(make_config):
    config = load_config(make_config(clients=2, rounds=1))
    saver = InMemorySaver()
    async with hold_run_lease(saver, "busy"):
        with pytest.raises(RunLeaseHeld):
            await run_federated(config, run_id="busy", checkpointer=saver, models=SIMULATED)
    assert await saver.aget_tuple({"configurable": {"thread_id": "busy", "checkpoint_ns": ""}}) is None  # nothing written
    state = await run_federated(config, run_id="busy", checkpointer=saver, models=SIMULATED)
    assert state["stop_reason"] == "max_rounds"


@pytest.mark.parametrize("run_id", ["../../x", "a/b", "a\\b", ".", "..", ".hidden", "", "x" * 129, "sp ace", "new\nline", "é"])
def test_unsafe_run_ids_are_refused(run_id):
    with pytest.raises(ValueError, match="run id"):
        check_run_id(run_id)


@pytest.mark.parametrize("run_id", ["run-1", "my_run.v2", "A" * 128, "x..y"])
def test_safe_run_ids_pass(run_id):
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize("name", ["évaluation à Zürich", "x" * 300, "../../etc", "."])
def test_a_generated_run_id_is_always_safe(name):
    assert check_run_id(new_run_id(name))


async def test_run_federated_refuses_an_unsafe_run_id(make_config):
    with pytest.raises(ValueError, match=r"run id '\.\./x'"):
        await run_federated(load_config(make_config()), run_id="../x", models=SIMULATED)
