"""The comparison library: arms and their registry, run ids, the centralized arm's config and
pooled data, and comparison.json from synthetic results payloads."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import DataError, FederationRuntime, load_config
from fedtextgrad_graph.aggregation import base as aggregation_base
from fedtextgrad_graph.aggregation.concat import ConcatAggregator
from fedtextgrad_graph.data import build_federated_data
from fedtextgrad_graph.experiments import (
    ArmRun,
    ComparisonError,
    arm_names,
    arm_run_id,
    build_comparison,
    centralized_config,
    check_saved_config,
    comparison_id,
    create_arm,
    parse_arms,
    plan_comparison,
    run_comparison,
)
from fedtextgrad_graph.experiments.centralized import pooled_data
from fedtextgrad_graph.run_ids import check_run_id
from fedtextgrad_graph.runs import saved_state

from ..conftest import ScriptedChatModel, write_bbh

TWO_TASKS = """
[run]
name = "two tasks: é"

[tasks.counting]
format = "bbh"
path = "counting.json"
split = {{ train = [0, 6], validation = [6, 10], test = [10, 14] }}

[tasks.words]
format = "jsonl"
path = "words.jsonl"
metric = "{words_metric}"
split = {{ train = [0, 4], validation = [4, 6], test = [6, 8] }}

[tasks.unused]
format = "bbh"
path = "missing.json"

[federation]
partition = "heterogeneous"
clients = [{{ id = "a", task = "counting" }}, {{ id = "b", task = "counting" }}, {{ id = "c", task = "words" }}]

[aggregation]
strategy = "summarize"

[evaluation]
mode = "federated"

[models]
model = "simulated"
"""


def _config(tmp_path: Path, words_metric: str = "judge", words: list[dict[str, str]] | None = None) -> Any:
    write_bbh(tmp_path / "counting.json", n=14)
    words = words or [{"input": f"Say the word number {i}.", "target": f"word{i}"} for i in range(8)]
    (tmp_path / "words.jsonl").write_text("\n".join(json.dumps(w) for w in words), encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(TWO_TASKS.format(words_metric=words_metric), encoding="utf-8")
    return load_config(path)


def test_every_registered_strategy_is_an_arm_after_centralized(monkeypatch):
    assert arm_names() == ["centralized", "concat", "summarize", "uid"]
    monkeypatch.setitem(aggregation_base._REGISTRY, "mine", ConcatAggregator)
    assert arm_names() == ["centralized", "concat", "mine", "summarize", "uid"] and create_arm("mine").name == "mine"
    assert [arm.name for arm in parse_arms(" uid,centralized ")] == ["uid", "centralized"]


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ("central", r"unknown arm 'central'; choose from centralized, concat, summarize, uid"),
        ("uid,,concat", r"empty arm name in 'uid,,concat'"),
        ("uid,uid", r"arm 'uid' is listed twice"),
        ("", r"empty arm name"),
    ],
)
def test_bad_arm_names_are_refused_naming_the_known_ones(arms, message):
    with pytest.raises(ValueError, match=message):
        parse_arms(arms)


def test_run_ids_derive_from_the_config_arm_and_seed(tmp_path):
    config = _config(tmp_path)
    cid = comparison_id(config)
    assert cid == comparison_id(_config(tmp_path))  # the same config, the same comparison
    assert cid.startswith("two-tasks") and check_run_id(cid) == cid
    assert comparison_id(config.with_model_override("openai:other")) != cid
    reseeded = config.model_copy(update={"run": config.run.model_copy(update={"seed": 5})})
    assert comparison_id(reseeded) != cid
    plan = plan_comparison(config, arms="uid,centralized", seeds=2)
    assert [(r.arm, r.seed, r.run_id) for r in plan] == [
        ("uid", 0, f"{cid}-uid-seed0"),
        ("uid", 1, f"{cid}-uid-seed1"),
        ("centralized", 0, f"{cid}-centralized-seed0"),
        ("centralized", 1, f"{cid}-centralized-seed1"),
    ]
    assert arm_run_id(cid, "uid", 1) == plan[1].run_id
    assert [r.config.run.seed for r in plan] == [0, 1, 0, 1]
    assert plan[0].config.aggregation.strategy == "uid"
    assert [r.arm for r in plan_comparison(config)] == ["centralized", "concat", "summarize", "uid"]


def test_comparisons_compare_cannot_run_are_refused(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(ComparisonError, match="seeds must be a whole number >= 1, not 0"):
        plan_comparison(config, seeds=0)
    reviewed = config.model_copy(update={"review": config.review.model_copy(update={"required": True})})
    with pytest.raises(ComparisonError, match=r"\[review\] required"):
        plan_comparison(reviewed)
    flower = config.with_flower(config.transport.flower)
    with pytest.raises(ComparisonError, match=r"\[transport\] kind = 'flower'"):
        plan_comparison(flower)
    with pytest.raises(ComparisonError, match="unknown arm 'x'"):
        plan_comparison(config, arms=["x"])


def test_the_centralized_arm_is_one_client_on_every_used_task(tmp_path):
    config = _config(tmp_path)
    central = centralized_config(config)
    assert central.federation.client_ids() == ["centralized"]
    assert list(central.tasks) == ["counting", "words"]  # the unused task is left out
    assert central.transport.kind == "centralized" and central.aggregation.strategy == "concat"
    assert central.screening.screens == [] and central.evaluation.mode == "server"
    same = ("client", "convergence", "prompt", "models", "guard")
    assert all(getattr(central, name) == getattr(config, name) for name in same)
    assert central.run == config.run


def test_the_centralized_client_trains_on_the_examples_the_federated_clients_share(tmp_path):
    config = _config(tmp_path)
    federated = build_federated_data(config)
    pooled = pooled_data(centralized_config(config))
    shared = Counter(ex for client in federated.clients.values() for ex in client.train)
    assert Counter(pooled.clients["centralized"].train) == shared and sum(shared.values()) == 10
    assert set(pooled.tasks) == {"counting", "words"}
    assert pooled.tasks["words"].test == federated.tasks["words"].test


async def test_the_centralized_client_scores_each_example_with_its_own_tasks_metric(tmp_path):
    judge = ScriptedChatModel(respond=lambda system, user: "<ACCURACY>1</ACCURACY>")
    runtime = FederationRuntime.create(centralized_config(_config(tmp_path)), models={"judge": judge})
    try:
        site = runtime.transport.sites["centralized"]  # type: ignore[attr-defined]
        score = site.score(round=1)
        counting = runtime.evaluation["counting"].train[0]
        assert await score(counting.input, f"Answer: {counting.target}", counting.target) is True
        assert await score(counting.input, "Answer: 999", counting.target) is False
        assert judge.requests == []  # last_number: no judge call
        word = runtime.evaluation["words"].train[0]
        assert await score(word.input, "anything", word.target) is True
        assert len(judge.requests) == 1 and word.input in judge.requests[0][1]
    finally:
        await runtime.aclose()


def test_an_example_in_two_tasks_with_different_metrics_is_refused(tmp_path):
    write_bbh(tmp_path / "counting.json", n=14)
    duplicate = json.loads((tmp_path / "counting.json").read_text())["examples"][0]
    words = [duplicate] + [{"input": f"w{i}", "target": "x"} for i in range(7)]
    config = _config(tmp_path, words_metric="exact", words=words)
    with pytest.raises(DataError, match="tasks.counting and tasks.words hold the same example with different metrics"):
        FederationRuntime.create(centralized_config(config))


def _payload(run_id: str, seed: int, test: float, validations: list[float], **extra: Any) -> dict[str, Any]:
    history = [
        {
            "round": i + 1,
            "validation_accuracy": v,
            "llm_calls": 10 * (i + 1),
            "prompt_chars": 100 + i,
            "prompt_tokens": 20 + i,
            "update_success_rate": 0.5,
            "validation_by_task": {"t1": {"correct": 1, "total": 2, "accuracy": v}, "t2": {"correct": 0, "total": 2, "accuracy": 0.0}},
            "merge": {"coverage": 0.8 + seed / 10, "uid_score": 0.2, "length_ratio": 1.1, "repairs": 1},
        }
        for i, v in enumerate(validations)
    ]
    return {
        "run_id": run_id,
        "status": "completed",
        "simulated": False,
        "rounds": len(history),
        "stop_reason": "max_rounds",
        "baseline_validation_accuracy": 0.1,
        "best_validation_accuracy": max(validations),
        "test_accuracy": test,
        "best_prompt": "Think. " * (seed + 1),
        "history": history,
        "config": {"run": {"seed": seed}, "aggregation": {"tokenizer": "wordpiece"}},
        "test_by_task": {"t1": {"correct": 3, "total": 4, "accuracy": test}, "t2": {"correct": 1, "total": 4, "accuracy": 0.25}},
        "llm_tokens": {"input": 1000 * (seed + 1), "output": 100, "calls_without_usage": 0},
        "llm_calls": sum(r["llm_calls"] for r in history) + 5,
        **extra,
    }


def test_comparison_json_sums_up_each_arm_over_seeds():
    runs = {
        "uid": [_payload("u0", 0, 0.5, [0.4, 0.6]), _payload("u1", 1, 0.7, [0.5])],
        "centralized": [_payload("c0", 0, 0.6, [0.6, 0.6]), _payload("c1", 1, 0.6, [0.7, 0.8])],
    }
    comparison = build_comparison("cmp", runs)
    assert comparison["arms"] == ["uid", "centralized"] and comparison["seeds"] == [0, 1]
    assert comparison["complete"] is True and comparison["simulated"] is False
    uid = comparison["results"]["uid"]
    assert uid["runs"][1] == {"seed": 1, "run_id": "u1", "status": "completed", "rounds": 1, "stop_reason": "max_rounds", "simulated": False}
    assert uid["test_accuracy"] == {"mean": 0.6, "std": statistics.stdev([0.5, 0.7]), "min": 0.5, "max": 0.7, "per_seed": [0.5, 0.7]}
    assert uid["test_by_task"]["t2"]["mean"] == 0.25 and uid["test_by_task"]["t1"]["per_seed"] == [0.5, 0.7]
    assert uid["llm_calls"]["per_seed"] == [35, 15]
    assert uid["llm_tokens"]["input"]["per_seed"] == [1000, 2000] and uid["llm_tokens"]["output"]["mean"] == 100
    assert uid["prompt_chars"]["per_seed"] == [len("Think. "), len("Think. Think. ")]
    assert uid["prompt_tokens"]["per_seed"] == [2, 4]  # wordpiece: words and punctuation
    assert uid["coverage"]["per_seed"] == pytest.approx([0.8, 0.9]) and uid["repairs"]["per_seed"] == [2, 1]
    by_round = uid["by_round"]
    assert [r["seeds"] for r in by_round] == [2, 1]
    assert by_round[0]["validation_accuracy"] == pytest.approx(0.45) and by_round[1]["validation_accuracy"] == 0.6
    assert by_round[0]["validation_by_task"] == {"t1": pytest.approx(0.45), "t2": 0.0}
    assert comparison["results"]["centralized"]["test_accuracy"]["std"] == 0.0


def test_keys_an_older_run_lacks_read_as_null():
    old = _payload("old", 0, 0.5, [0.5])
    for key in ("test_by_task", "llm_tokens", "llm_calls"):
        del old[key]
    for record in old["history"]:
        for key in ("merge", "validation_by_task", "update_success_rate"):
            del record[key]
    result = build_comparison("cmp", {"concat": [old]})["results"]["concat"]
    assert result["test_by_task"] == {} and result["llm_tokens"]["input"]["per_seed"] == [None]
    assert result["llm_calls"]["per_seed"] == [None]
    assert result["coverage"] == {"mean": None, "std": None, "min": None, "max": None, "per_seed": [None]}
    assert result["test_accuracy"]["std"] is None  # one seed: no spread
    assert result["by_round"][0]["uid_score"] is None and result["by_round"][0]["validation_by_task"] == {}


async def test_running_a_comparison_again_skips_its_finished_runs(make_config, tmp_path):
    config = load_config(make_config(clients=2, rounds=1, local_steps=1)).with_model_override("simulated")
    checkpointer = InMemorySaver()
    calls: list[str] = []

    def count(run: Any, event: Any) -> None:
        if event.kind == "llm_call":
            calls.append(run.run_id)

    first = await run_comparison(config, checkpointer=checkpointer, arms="centralized,concat", on_event=count)
    assert set(calls) == {f"{comparison_id(config)}-{arm}-seed0" for arm in ("centralized", "concat")}
    calls.clear()
    again = await run_comparison(config, checkpointer=checkpointer, arms="centralized,concat", on_event=count)
    assert calls == [] and again == first
    (concat,) = plan_comparison(config, arms="concat")
    saved = await saved_state(checkpointer, concat.run_id)
    assert saved is not None
    check_saved_config(concat, saved)
    edited = config.model_copy(update={"client": config.client.model_copy(update={"batch_size": 2})})
    with pytest.raises(ComparisonError, match=f"run {concat.run_id} exists with another config"):
        check_saved_config(ArmRun("concat", 0, concat.run_id, edited), saved)


def test_the_comparison_table_fits_80_columns_with_a_row_per_arm_and_task(monkeypatch):
    from rich.console import Console

    from fedtextgrad_graph.cli import view
    from fedtextgrad_graph.cli.comparison_table import print_comparison

    console = Console(record=True, width=80, force_terminal=False)
    monkeypatch.setattr(view, "console", console)
    comparison = build_comparison(
        "a-long-comparison-name-compare-0123456789",
        {"centralized": [_payload("c0", 0, 0.6, [0.6]), _payload("c1", 1, 0.8, [0.7])], "summarize": [_payload("s0", 0, 0.5, [0.5])]},
    )
    print_comparison(comparison)
    # A table wider than the console would be printed as one "column value" line per row.
    rows = [line.split() for line in console.export_text().splitlines()]
    # arm, test mean±std, best validation, calls, tokens (input + output), chars, coverage, UID
    assert ["centralized", "0.700±0.141", "0.650", "15", "1600", "10", "0.85", "0.200"] in rows
    assert ["summarize", "0.500", "0.500", "15", "1100", "7", "0.80", "0.200"] in rows
    assert ["centralized", "0.700±0.141", "0.250±0.000"] in rows  # per task: t1, t2
