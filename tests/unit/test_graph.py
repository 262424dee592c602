"""The round graph end to end in-process: state contents, checkpoints, evaluation modes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import (
    FederationRuntime,
    SimulatedChatModel,
    build_round_graph,
    create_checkpointer,
    load_config,
    run_federated,
)
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
    scores = [(state["baseline_accuracy"], 0)] + [(r["validation_accuracy"], r["round"]) for r in state["history"]]
    best_score = max(score for score, _ in scores)
    assert state["best_score"] == best_score
    assert state["best_round"] == next(round for score, round in scores if score == best_score)  # first of ties
    if state["best_round"]:
        assert state["best_prompt"] == state["history"][state["best_round"] - 1]["global_prompt"]
    else:
        assert state["best_prompt"].startswith("You will answer a reasoning question.")  # the initial prompt
    assert 0 <= state["test_accuracy"] <= 1
    assert set(state["client_updates"]) == {"client-1", "client-2", "client-3"}


async def test_the_initial_prompt_stays_best_when_no_round_beats_it(make_config):
    class NeverBetter(SimulatedChatModel):
        """Answers right only under the initial prompt (which has no strategy tips)."""

        def _result(self, messages):
            from fedtextgrad_graph.models.simulated import TIPS

            system = next((m.text for m in messages if m.type == "system"), "")
            if messages[-1].text.startswith("I have") and "Merge" not in messages[-1].text:
                from langchain_core.messages import AIMessage
                from langchain_core.outputs import ChatGeneration, ChatResult

                right = not any(tip in system for tip in TIPS)
                return ChatResult(generations=[ChatGeneration(message=AIMessage("Answer: " + ("RIGHT" if right else "-1")))])
            return super()._result(messages)

    path = make_config(clients=2, rounds=2)
    path.write_text(path.read_text().replace('format = "bbh"', 'format = "bbh"\nmetric = "exact"'))
    config = load_config(path)
    data_path = path.parent / "counting.json"
    examples = json.loads(data_path.read_text())["examples"]
    data_path.write_text(json.dumps({"examples": [{**ex, "target": "RIGHT"} for ex in examples]}))
    models = {**SIMULATED, "task": NeverBetter()}
    state = await run_federated(config, models=models)
    assert state["baseline_accuracy"] == 1.0
    assert state["best_round"] == 0 and state["best_score"] == 1.0
    assert not any(r["improved"] for r in state["history"])


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


async def test_langchain_callbacks_see_every_llm_call(make_config):
    """TextGrad's calls hop through worker threads; LangChain callbacks and tracing still see them."""
    from langchain_core.callbacks import BaseCallbackHandler

    from fedtextgrad_graph import build_round_graph, initial_state

    class CountChatStarts(BaseCallbackHandler):
        def __init__(self) -> None:
            self.starts = 0

        def on_chat_model_start(self, *args, **kwargs) -> None:
            self.starts += 1

    config = load_config(make_config(clients=2, rounds=1))
    runtime = FederationRuntime.create(config, models=SIMULATED)
    handler = CountChatStarts()
    try:
        graph = build_round_graph(runtime)
        await graph.ainvoke(initial_state(config), {"configurable": {"thread_id": "cb"}, "callbacks": [handler]})
    finally:
        runtime.close()
    assert handler.starts == runtime.gateway.count() > 0


async def test_a_run_id_cannot_be_started_twice(make_config, tmp_path):
    from fedtextgrad_graph.runs import RunExistsError

    config = load_config(make_config(clients=2, rounds=1))
    url = sqlite_url(tmp_path / "twice.sqlite")
    async with create_checkpointer(url) as checkpointer:
        await run_federated(config, run_id="same", checkpointer=checkpointer, models=SIMULATED)
        with pytest.raises(RunExistsError, match="resume it"):
            await run_federated(config, run_id="same", checkpointer=checkpointer, models=SIMULATED)
        state = await run_federated(config, run_id="same", checkpointer=checkpointer, models=SIMULATED, resume=True)
    assert [r["round"] for r in state["history"]] == [1]


async def test_a_crash_mid_screen_resumes_at_the_screen(make_config, monkeypatch):
    """The screen is a node of its own: a run that fails while screening resumes there, and the
    clients' local steps (already checkpointed) are not run again."""
    import fedtextgrad_graph.server.graph as round_graph

    compare = round_graph.compare_to_global

    async def crash(*args, **kwargs):
        raise RuntimeError("screening crashed")

    config = load_config(make_config(clients=2, rounds=1))
    checkpointer = InMemorySaver()
    monkeypatch.setattr(round_graph, "compare_to_global", crash)
    runtime = FederationRuntime.create(config, models=SIMULATED)
    try:
        with pytest.raises(RuntimeError, match="screening crashed"):
            await stream_run(runtime, checkpointer, "crash", resume=False)
        saved = build_round_graph(runtime, checkpointer=checkpointer).get_state({"configurable": {"thread_id": "crash"}})
    finally:
        runtime.close()
    assert saved.next == ("screen",)

    monkeypatch.setattr(round_graph, "compare_to_global", compare)
    calls: list = []
    runtime = FederationRuntime.create(config, models=SIMULATED, on_call=calls.append)
    try:
        state = await stream_run(runtime, checkpointer, "crash", resume=True)
    finally:
        runtime.close()
    assert not [c for c in calls if c.role == "optimizer"]  # the uploads came from the checkpoint
    record = state["history"][0]
    assert set(record["screen_scores"]) == {"client-1", "client-2"} and record["screen_llm_calls"] > 0
    assert record["llm_calls"] >= record["screen_llm_calls"] + record["evaluation_llm_calls"]
