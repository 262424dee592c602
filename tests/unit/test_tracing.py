"""Traces users can read: every LLM call carries its run, role, client, round and local step
as LangChain metadata and tags, and reaches the callbacks given to ``run_federated`` and
``federate_app``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from fedtextgrad_graph import PromptedApp, SimulatedChatModel, load_config, run_federated
from fedtextgrad_graph.config import ROLES
from fedtextgrad_graph.runs import results_payload

from .test_apps import _clerk, _federate


class RecordingHandler(BaseCallbackHandler):
    """Records each chat-model start (its metadata, tags and parent run) and each chain start."""

    def __init__(self) -> None:
        self.chat_starts: list[dict[str, Any]] = []
        self.chain_starts: list[dict[str, Any]] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.chat_starts.append({"metadata": dict(metadata or {}), "tags": list(tags or []), "parent": parent_run_id, "name": kwargs.get("name")})

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.chain_starts.append({"metadata": dict(metadata or {}), "tags": list(tags or []), "name": kwargs.get("name")})


async def test_every_llm_call_of_a_run_carries_its_role_client_round_and_local_step(make_config):
    handler = RecordingHandler()
    config = load_config(make_config(clients=2, rounds=2, local_steps=2))
    models = {role: SimulatedChatModel() for role in ROLES}
    state = await run_federated(
        config,
        run_id="traced",
        models=models,
        callbacks=[handler],
        runnable_config={"tags": ["nightly"], "metadata": {"team": "search"}},
    )
    calls = handler.chat_starts
    assert len(calls) == results_payload(state, run_id="traced")["llm_calls"] > 0
    for call in calls:
        meta, tags = call["metadata"], call["tags"]
        assert meta["fedtextgrad_run_id"] == "traced", meta
        assert meta["role"] in ROLES and f"role:{meta['role']}" in tags and "fedtextgrad" in tags
        assert call["name"] == f"fedtextgrad:{meta['role']}"
        assert "nightly" in tags and meta["team"] == "search", call  # the user's config reaches every call
        assert call["parent"] is not None, call  # nested under the graph node that made it
        if meta["client_id"] is not None:  # a client's local training
            assert f"client:{meta['client_id']}" in tags and meta["round"] in (1, 2)
            assert meta["local_step"] in (1, 2), meta
            assert f"round:{meta['round']}" in tags
        else:  # the server's calls: baseline (round 0), merges, validation, the final test (no round)
            assert "local_step" not in meta and not any(tag.startswith("client:") for tag in tags)
    clients = {c["metadata"]["client_id"] for c in calls}
    assert clients == {"client-1", "client-2", None}
    roles = {c["metadata"]["role"] for c in calls}
    assert {"task", "optimizer", "aggregator"} <= roles
    purposes = {c["metadata"].get("purpose") for c in calls if c["metadata"]["role"] == "optimizer"}
    assert purposes == {"gradient", "update"}  # a textual gradient is told from a rewrite
    steps = {(c["metadata"]["client_id"], c["metadata"]["round"], c["metadata"]["local_step"]) for c in calls if "local_step" in c["metadata"]}
    assert steps == {(cid, r, k) for cid in ("client-1", "client-2") for r in (1, 2) for k in (1, 2)}


async def test_an_apps_runs_carry_the_calls_metadata_and_reach_the_callbacks():
    handler = RecordingHandler()
    model = _clerk()
    chain = ChatPromptTemplate.from_messages([("system", "{system_prompt}"), ("human", "{input}")]) | model | StrOutputParser()
    await _federate(PromptedApp.from_runnable(chain, name="clerk"), callbacks=[handler], config={"tags": ["shop"]})
    app_calls = [c for c in handler.chat_starts if c["metadata"].get("role") == "task"]
    assert app_calls, "the app's chat model reported no run"
    assert all("shop" in c["tags"] and "role:task" in c["tags"] and c["metadata"]["fedtextgrad_run_id"] for c in app_calls)
    assert {c["metadata"]["client_id"] for c in app_calls} >= {"store-a", "store-b"}
