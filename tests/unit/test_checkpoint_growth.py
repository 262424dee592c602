"""Checkpoint bytes per round do not grow with the round number (SQLite; Redis: integration)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, build_round_graph, create_checkpointer, load_config
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.runs import saved_state, stream_run

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}
NO_BASELINE_OR_TEST = "\n[evaluation]\nbaseline = false\ntest = false\n"


def stored_bytes(path: Path) -> int:
    """Bytes of the checkpoints, their metadata and the pending writes in a SQLite file."""
    with sqlite3.connect(path) as db:
        (checkpoints,) = db.execute("SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM checkpoints").fetchone()
        (writes,) = db.execute("SELECT SUM(LENGTH(value)) FROM writes").fetchone()
    return int(checkpoints) + int(writes)


async def _run(make_config: Callable[..., Path], tmp_path: Path, rounds: int) -> tuple[int, dict[str, object]]:
    config = load_config(make_config(clients=10, rounds=rounds, extra=NO_BASELINE_OR_TEST, name=f"r{rounds}.toml"))
    db = tmp_path / f"r{rounds}.sqlite"
    runtime = FederationRuntime.create(config, models=SIMULATED)
    try:
        async with create_checkpointer(sqlite_url(db)) as saver:
            state = await stream_run(runtime, saver, "growth", resume=False)
            saved = await saved_state(saver, "growth")
            graph_state = await build_round_graph(runtime, checkpointer=saver).aget_state({"configurable": {"thread_id": "growth"}})
    finally:
        await runtime.aclose()
    assert saved is not None
    assert len(state["history"]) == rounds
    for channel in ("history", "round_metrics", "client_updates"):  # stored as writes, read back whole
        assert saved[channel] == state[channel] == graph_state.values[channel]
    return stored_bytes(db), state


async def test_sqlite_bytes_per_round_flat(make_config: Callable[..., Path], tmp_path: Path) -> None:
    two, _ = await _run(make_config, tmp_path, 2)
    eight, _ = await _run(make_config, tmp_path, 8)
    assert eight / 8 <= 1.2 * (two / 2), (two, eight)
