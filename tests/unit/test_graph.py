"""The round graph end to end in-process: state contents, checkpoints, evaluation modes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, create_checkpointer, load_config, run_federated
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.runs import stream_run

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}


async def _run(config_path: Path, checkpoint_url: str = "memory://", run_id: str = "t") -> dict:
    async with create_checkpointer(checkpoint_url) as checkpointer:
        return await run_federated(load_config(config_path), run_id=run_id, checkpointer=checkpointer, models=SIMULATED)


async def test_state_after_a_run(make_config):
    state = await _run(make_config(clients=3, rounds=2))
    assert [r["round"] for r in state["history"]] == [1, 2]
    assert state["stop_reason"] == "max_rounds"
    best = max(state["history"], key=lambda r: r["validation_accuracy"])
    assert state["best_score"] == best["validation_accuracy"]
    assert state["best_prompt"] == state["history"][state["best_round"] - 1]["global_prompt"]
    assert 0 <= state["test_accuracy"] <= 1
    assert set(state["client_updates"]) == {"client-1", "client-2", "client-3"}


async def test_private_examples_never_reach_the_checkpoint(make_config, tmp_path):
    config = make_config(clients=3, rounds=2, local_steps=2)
    db = tmp_path / "ckpt.sqlite"
    state = await _run(config, sqlite_url(db))
    with sqlite3.connect(db) as conn:
        blobs = b"".join(
            bytes(value)
            for table, column in (("checkpoints", "checkpoint"), ("writes", "value"))
            for (value,) in conn.execute(f"SELECT {column} FROM {table}")
            if value is not None
        )
    assert state["history"][-1]["global_prompt"].encode() in blobs  # the search does find what is there
    examples = json.loads((tmp_path / "counting.json").read_text())["examples"]
    for example in examples:
        assert example["input"].encode() not in blobs


async def test_federated_evaluation_counts_every_clients_share(make_config, tmp_path):
    server = await _run(make_config(clients=3, rounds=1))
    federated_config = make_config(clients=3, rounds=1, extra='\n[evaluation]\nmode = "federated"\n', name="fed.toml")
    federated = await _run(federated_config)
    s, f = server["history"][0], federated["history"][0]
    assert f["global_prompt"] == s["global_prompt"]
    # Homogeneous clients share the validation split between them: the weighted mean over
    # their counts equals the server's score on the whole split.
    assert (f["validation_correct"], f["validation_total"]) == (s["validation_correct"], s["validation_total"])


async def test_sampling_rate_selects_a_subset_each_round(make_config):
    config = make_config(clients=4, rounds=3, extra="")
    path = Path(config)
    path.write_text(path.read_text().replace("sampling_rate = 1.0", "sampling_rate = 0.5"))
    state = await _run(path)
    for record in state["history"]:
        assert len(record["clients"]) == 2
        assert sorted(record["client_prompts"]) == sorted(record["clients"])


async def test_judge_metric_scores_with_the_judge_model(make_config):
    path = make_config(clients=2, rounds=1)
    path.write_text(path.read_text().replace('format = "bbh"', 'format = "bbh"\nmetric = "judge"'))
    calls: list = []
    config = load_config(path)
    runtime = FederationRuntime.create(config, models=SIMULATED, on_call=calls.append)
    try:
        state = await stream_run(runtime, InMemorySaver(), "judge", resume=False)
    finally:
        runtime.close()
    judged = [c for c in calls if c.role == "judge"]
    # every answer is judged: client batches (forward and proximal re-score), validation and test
    assert len(judged) == sum(c.role == "task" for c in calls)
    assert {c.client_id for c in judged} == {"client-1", "client-2", None}
    assert state["history"][0]["validation_total"] == 10
