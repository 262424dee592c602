"""The graph module ``langgraph.json`` registers for ``langgraph dev`` and LangGraph Studio."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from fedtextgrad_graph import FederationRuntime, initial_state, load_config

REPO = Path(__file__).resolve().parents[2]
GRAPH_ID = "fedtextgrad_round"


def _registered() -> tuple[Path, str]:
    """The file and attribute ``langgraph.json`` names for the round graph."""
    spec = json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))
    assert spec["dependencies"] == ["."]
    path, _, attribute = spec["graphs"][GRAPH_ID].partition(":")
    return REPO / path, attribute


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("fedtextgrad_round_studio", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def studio(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The registered module, imported from its file as the server does, with default settings."""
    monkeypatch.delenv("FEDTEXTGRAD_CONFIG", raising=False)
    monkeypatch.delenv("FEDTEXTGRAD_MODEL", raising=False)
    path, attribute = _registered()
    assert (path, attribute) == (REPO / "graphs" / "fedtextgrad_round.py", "make_graph")
    return _load_module(path)


async def test_factory_compiles_the_round_graph(studio: ModuleType):
    async with studio.make_graph() as graph:
        graph.validate()
        assert graph.name == GRAPH_ID and graph.checkpointer is None  # the server brings its own
        assert {"baseline", "broadcast", "client_optimizer", "screen", "review", "check_convergence", "final_test"} <= set(graph.nodes)
        assert "client_optimizer:textgrad_step" in graph.get_graph(xray=True).nodes


def test_defaults_are_the_offline_example(studio: ModuleType):
    config = studio.studio_config()
    assert config.run.name == "object-counting"
    assert {config.model_spec(role).model for role in ("task", "optimizer", "aggregator", "judge")} == {"simulated"}


@pytest.mark.parametrize("empty_input", [True, False], ids=["empty-input", "initial-state"])
async def test_runs_from_the_documented_input(studio: ModuleType, make_config, monkeypatch: pytest.MonkeyPatch, empty_input: bool):
    config_path = make_config(clients=2, rounds=1, local_steps=1)
    monkeypatch.setenv("FEDTEXTGRAD_CONFIG", str(config_path))
    closed: list[FederationRuntime] = []
    close = FederationRuntime.close
    monkeypatch.setattr(FederationRuntime, "close", lambda runtime: closed.append(runtime) or close(runtime))
    async with studio.make_graph() as graph:
        state = await graph.ainvoke({} if empty_input else initial_state(load_config(config_path)))
        assert not closed
    assert len(closed) == 1  # each request's runtime is closed when the request ends
    assert [r["round"] for r in state["history"]] == [1] and state["history"][0]["clients"] == ["client-1", "client-2"]
    assert state["stop_reason"] == "max_rounds" and state["test_accuracy"] is not None


async def test_review_is_a_langgraph_interrupt_that_studio_resumes(studio: ModuleType, make_config, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FEDTEXTGRAD_CONFIG", str(make_config(clients=2, rounds=1, local_steps=1, extra="[review]\nrequired = true\n")))
    async with studio.make_graph() as graph:
        graph.checkpointer = InMemorySaver()  # the server's, in Studio
        thread = {"configurable": {"thread_id": "studio"}}
        paused = await graph.ainvoke({}, thread)
        [request] = paused["__interrupt__"]
        assert request.value["kind"] == "review" and request.value["candidate"] == paused["global_prompt"]
        assert (await graph.aget_state(thread)).next == ("review",)
        asked_again = await graph.ainvoke(Command(resume={"decision": "perhaps"}), thread)
        [again] = asked_again["__interrupt__"]
        assert again.value["error"].startswith("decision must be one of") and again.value["attempt"] == 2
        state = await graph.ainvoke(Command(resume={"decision": "approve", "note": "from Studio"}), thread)
    assert state["history"][0]["review"]["note"] == "from Studio" and state["stop_reason"] == "max_rounds"
