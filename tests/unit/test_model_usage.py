"""The models a run shows come from its round records: per round, mixed when they differ."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fedtextgrad_graph import SimulatedChatModel, load_config, run_federated
from fedtextgrad_graph.model_usage import (
    models_by_round,
    rounds_text,
    simulated_used,
    used_models,
)
from fedtextgrad_graph.report import write_report
from fedtextgrad_graph.runs import results_payload

SIM = "simulated"


def _history(*models: dict[str, str]) -> list[dict[str, Any]]:
    return [{"round": n, "models": m} for n, m in enumerate(models, start=1)]


def test_one_model_per_role_when_every_round_agrees():
    history = _history({"task": "app:stock-chain", "optimizer": SIM}, {"task": "app:stock-chain", "optimizer": SIM})
    assert used_models(history) == {"task": "app:stock-chain", "optimizer": SIM}
    assert models_by_round(history) == [{"rounds": [1, 2], "models": {"task": "app:stock-chain", "optimizer": SIM}}]
    assert simulated_used(history)


def test_mixed_rounds_list_each_model_with_its_rounds():
    history = _history({"task": SIM}, {"task": SIM}, {"task": "openai:other"}, {"task": SIM, "c1.task": "app:a"})
    assert used_models(history) == {
        "task": "mixed: simulated (rounds 1-2, 4), openai:other (round 3)",
        "c1.task": "app:a (round 4)",
    }
    assert [g["rounds"] for g in models_by_round(history)] == [[1, 2], [3], [4]]


def test_nothing_recorded_before_a_round_finished():
    assert used_models([]) == {} and models_by_round([]) == [] and not simulated_used([])
    assert not simulated_used(_history({"task": "openai:gpt-4o-mini"}))


def test_rounds_text():
    assert rounds_text([3]) == "round 3"
    assert rounds_text([4, 1, 2, 6, 7, 8]) == "rounds 1-2, 4, 6-8"


async def test_results_and_report_show_the_models_the_rounds_used(make_config, tmp_path: Path):
    """The config names no model (default openai:gpt-4o-mini): the run used the given ones."""
    given = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}
    state = await run_federated(load_config(make_config(clients=2, rounds=2)), run_id="r", models=given)
    payload = results_payload(state, run_id="r")
    assert "openai:gpt-4o-mini" not in str(payload["models"]) and payload["models"]["task"] == SIM
    assert payload["simulated"] and [g["rounds"] for g in payload["models_by_round"]] == [[1, 2]]

    mixed = copy.deepcopy(state)
    mixed["history"][1]["models"] = {**mixed["history"][1]["models"], "task": "openai:other"}
    payload = results_payload(mixed, run_id="r")
    assert payload["models"]["task"] == "mixed: simulated (round 1), openai:other (round 2)"
    page = write_report(mixed, tmp_path, run_id="r").html.read_text(encoding="utf-8")
    assert "task: mixed: simulated (round 1), openai:other (round 2)" in page and "gpt-4o-mini" not in page
