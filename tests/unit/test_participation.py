"""Partial participation in-process: failing or late clients are dropped under the quorum;
below the quorum the run pauses, and resuming it asks only the missing clients again."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from fedtextgrad_graph import RunPaused, SimulatedChatModel, create_checkpointer, load_config, run_federated
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.runs import saved_state

from ..conftest import LatencyModel

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}


class BrokenModel(SimulatedChatModel):
    """Every call fails with an error the gateway does not retry."""

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        raise ValueError("model endpoint rejected the request")


async def test_a_failing_client_is_dropped_and_the_round_aggregates_the_others(make_config):
    config = load_config(make_config(clients=3, rounds=2))
    state = await run_federated(config, models={**SIMULATED, "client-2.optimizer": BrokenModel()})
    for record in state["history"]:
        assert record["clients"] == ["client-1", "client-2", "client-3"]
        assert sorted(record["client_prompts"]) == ["client-1", "client-3"]
        assert record["dropped"] == {"client-2": "ValueError: model endpoint rejected the request"}
    assert state["stop_reason"] == "max_rounds" and state["test_accuracy"] is not None


async def test_a_client_past_the_deadline_is_dropped(make_config):
    path = make_config(clients=3, rounds=1)
    path.write_text(path.read_text().replace("sampling_rate = 1.0", "sampling_rate = 1.0\nclient_deadline_s = 0.5"))
    slow = LatencyModel(latency_s=2.0)
    state = await run_federated(load_config(path), models={**SIMULATED, "client-3.task": slow})
    [record] = state["history"]
    assert record["dropped"] == {"client-3": "missed the deadline (0.5 s)"}
    assert sorted(record["client_prompts"]) == ["client-1", "client-2"]


async def test_below_the_quorum_the_run_pauses_and_resume_retries_only_the_missing(make_config, tmp_path):
    config = load_config(make_config(clients=3, rounds=2))
    url = sqlite_url(tmp_path / "pause.sqlite")
    broken = {**SIMULATED, "client-2.optimizer": BrokenModel(), "client-3.optimizer": BrokenModel()}
    async with create_checkpointer(url) as checkpointer:
        with pytest.raises(RunPaused, match=r"round 1 paused: 1 client update\(s\) arrived, the quorum needs 2") as paused:
            await run_federated(config, run_id="p", checkpointer=checkpointer, models=broken)
        assert paused.value.pause["dropped"] == {
            "client-2": "ValueError: model endpoint rejected the request",
            "client-3": "ValueError: model endpoint rejected the request",
        }
        saved = await saved_state(checkpointer, "p")
        assert saved["paused"]["arrived"] == ["client-1"]

        counted = LatencyModel(latency_s=0.0)
        models = {**SIMULATED, "client-1.task": counted, "client-1.optimizer": counted}
        state = await run_federated(config, run_id="p", checkpointer=checkpointer, models=models, resume=True)
    assert [r["round"] for r in state["history"]] == [1, 2]
    first = state["history"][0]
    assert sorted(first["client_prompts"]) == ["client-1", "client-2", "client-3"] and first["dropped"] == {}
    # client-1 had uploaded round 1 before the pause: resuming asked only clients 2 and 3 again.
    assert counted.calls == state["history"][1]["client_metrics"]["client-1"]["llm_calls"]


async def test_quorum_share_is_configurable(make_config):
    path = make_config(clients=3, rounds=1)
    path.write_text(path.read_text().replace("sampling_rate = 1.0", "sampling_rate = 1.0\nquorum = 1.0"))
    with pytest.raises(RunPaused, match="the quorum needs 3"):
        await run_federated(load_config(path), models={**SIMULATED, "client-1.optimizer": BrokenModel()})
