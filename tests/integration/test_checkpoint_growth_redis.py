"""Checkpoint bytes per round in Redis do not grow with the round number."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, create_checkpointer, load_config
from fedtextgrad_graph.runs import saved_state, stream_run

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}
NO_BASELINE_OR_TEST = "\n[evaluation]\nbaseline = false\ntest = false\n"


async def _stored_bytes(make_config: Callable[..., Path], redis_base_url: str, rounds: int) -> int:
    config = load_config(make_config(clients=10, rounds=rounds, extra=NO_BASELINE_OR_TEST, name=f"r{rounds}.toml"))
    prefix = f"growth-{uuid.uuid4().hex[:10]}"
    separator = "&" if "?" in redis_base_url else "?"
    runtime = FederationRuntime.create(config, models=SIMULATED)
    try:
        async with create_checkpointer(f"{redis_base_url}{separator}prefix={prefix}") as saver:
            state = await stream_run(runtime, saver, "growth", resume=False)
            saved = await saved_state(saver, "growth")
    finally:
        await runtime.aclose()
    assert saved is not None and len(saved["history"]) == rounds and saved["history"] == state["history"]
    client = redis.Redis.from_url(redis_base_url)
    try:
        return sum(client.memory_usage(key, samples=0) or 0 for key in client.scan_iter(f"{prefix}:*"))
    finally:
        client.close()


async def test_redis_bytes_per_round_flat(make_config: Callable[..., Path], redis_base_url: str) -> None:
    # 16 rounds, not 8: the saver stores a channel's value only when its version changes (once a
    # round for the history), so the history stored whole grew slower here than in SQLite
    # (8 rounds: 1.19x the 2-round figure; 16 rounds: well past 1.2x).
    two = await _stored_bytes(make_config, redis_base_url, 2)
    sixteen = await _stored_bytes(make_config, redis_base_url, 16)
    assert sixteen / 16 <= 1.2 * (two / 2), (two, sixteen)
