"""Human review in-process: the run pauses after each aggregation; approve, edit and reject
continue it without merging again; serving shows only approved prompts meanwhile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from fedtextgrad_graph import (
    FederatedPrompt,
    RunAwaitingReview,
    RunPaused,
    SimulatedChatModel,
    aload_prompt,
    create_checkpointer,
    load_config,
    run_federated,
)
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.config import FedTextGradConfig
from fedtextgrad_graph.runs import results_payload, run_status, saved_state
from fedtextgrad_graph.server.review import parse_decision

from ..conftest import LatencyModel, ScriptedChatModel

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}
REVIEW = "\n[review]\nrequired = true\n"
EDITED = "EDITED: count every object once.\nThe last line of your response should be of the following format: 'Answer: $VALUE'."


class EditedPromptSolver(SimulatedChatModel):
    """A task model that answers right only under a system prompt containing ``EDITED``."""

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        system = next((m.text for m in messages if m.type == "system"), "")
        if messages[-1].text.startswith("I have") and "Merge" not in messages[-1].text:
            answer = "Answer: RIGHT" if "EDITED" in system else "Answer: -1"
            return ChatResult(generations=[ChatGeneration(message=AIMessage(answer))])
        return super()._result(messages)


class FailingTask(SimulatedChatModel):
    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        raise ValueError("model endpoint rejected the request")


def _config(make_config, *, rounds: int, exact: bool = False) -> FedTextGradConfig:
    path = make_config(clients=2, rounds=rounds, extra=REVIEW)
    if exact:  # targets "RIGHT": only EditedPromptSolver under an EDITED prompt scores
        path.write_text(path.read_text().replace('format = "bbh"', 'format = "bbh"\nmetric = "exact"'))
        data = path.parent / "counting.json"
        examples = json.loads(data.read_text())["examples"]
        data.write_text(json.dumps({"examples": [{**ex, "target": "RIGHT"} for ex in examples]}))
    return load_config(path)


def _url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "review.sqlite")


async def _pause(config: FedTextGradConfig, url: str, models: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    async with create_checkpointer(url) as checkpointer:
        with pytest.raises(RunAwaitingReview) as paused:
            await run_federated(config, run_id="r", checkpointer=checkpointer, models=models or SIMULATED, **kw)
    return paused.value.pause


async def _continue(config: FedTextGradConfig, url: str, review: dict[str, Any], models: dict[str, Any] | None = None) -> dict[str, Any]:
    async with create_checkpointer(url) as checkpointer:
        return await run_federated(
            config, run_id="r", checkpointer=checkpointer, models=models or SIMULATED, resume=True, review=review
        )


async def _saved(url: str) -> dict[str, Any]:
    async with create_checkpointer(url) as checkpointer:
        state = await saved_state(checkpointer, "r")
    assert state is not None
    return state


async def test_the_run_pauses_after_aggregation_with_the_candidate_and_its_scores(make_config, tmp_path):
    config, url = _config(make_config, rounds=1), _url(tmp_path)
    aggregator = LatencyModel(latency_s=0.0)
    pause = await _pause(config, url, {**SIMULATED, "aggregator": aggregator})
    assert aggregator.calls > 0  # the uid merge ran before the pause
    saved = await _saved(url)
    assert run_status(saved) == "awaiting_review" and saved["history"] == []
    assert pause["kind"] == "review" and pause["round"] == 1 and pause["aggregation"] == "uid"
    assert pause["candidate"] == saved["global_prompt"] != pause["current"]
    assert pause["current"] == saved["round_metrics"]["previous_prompt"]
    assert pause["candidate_score"] == saved["round_metrics"]["validation_accuracy"]
    assert pause["current_score"] == saved["baseline_accuracy"] == pause["reference_score"]
    payload = results_payload(saved, run_id="r")
    assert payload["status"] == "awaiting_review" and payload["pending_review"]["round"] == 1
    assert payload["latest_prompt"] == pause["current"]  # not the candidate


async def test_approve_keeps_the_merge_without_merging_again(make_config, tmp_path):
    config, url = _config(make_config, rounds=1), _url(tmp_path)
    pause = await _pause(config, url)
    aggregator = LatencyModel(latency_s=0.0)
    state = await _continue(config, url, {"decision": "approve", "note": "reads well"}, {**SIMULATED, "aggregator": aggregator})
    assert aggregator.calls == 0
    [record] = state["history"]
    assert record["review"] == {"decision": "approve", "note": "reads well", "candidate_validation_accuracy": pause["candidate_score"]}
    assert record["global_prompt"] == state["global_prompt"] == pause["candidate"]
    assert record["validation_accuracy"] == pause["candidate_score"]
    assert run_status(state) == "completed"


async def test_edit_keeps_the_edited_prompt_and_scores_it(make_config, tmp_path):
    config, url = _config(make_config, rounds=1, exact=True), _url(tmp_path)
    models = {**SIMULATED, "task": EditedPromptSolver()}
    pause = await _pause(config, url, models)
    assert pause["candidate_score"] == 0.0
    aggregator = LatencyModel(latency_s=0.0)
    state = await _continue(
        config, url, {"decision": "edit", "prompt": EDITED + "\n", "note": "simpler"}, {**models, "aggregator": aggregator}
    )
    assert aggregator.calls == 0
    [record] = state["history"]
    assert record["global_prompt"] == state["global_prompt"] == EDITED
    assert record["validation_accuracy"] == 1.0 and record["validation_total"] == 10
    assert record["evaluation_llm_calls"] > 0 and record["prompt_chars"] == len(EDITED)
    assert record["review"]["decision"] == "edit" and record["review"]["note"] == "simpler"
    assert record["review"]["candidate_prompt"] == pause["candidate"] and record["review"]["candidate_validation_accuracy"] == 0.0
    assert state["best_prompt"] == EDITED and state["best_round"] == 1 and record["improved"]


async def test_reject_keeps_the_current_prompt_and_the_round_does_not_improve(make_config, tmp_path):
    config, url = _config(make_config, rounds=2), _url(tmp_path)
    first = await _pause(config, url)
    aggregator = LatencyModel(latency_s=0.0)
    async with create_checkpointer(url) as checkpointer:
        with pytest.raises(RunAwaitingReview) as paused:
            await run_federated(
                config, run_id="r", checkpointer=checkpointer, resume=True,
                models={**SIMULATED, "aggregator": aggregator}, review={"decision": "reject", "note": "too long"},
            )
    second = paused.value.pause
    saved = await _saved(url)
    # the resume merged round 2 only: round 1's merge came from the checkpoint
    assert aggregator.calls == saved["round_metrics"]["aggregation_llm_calls"] > 0
    [record] = saved["history"]
    assert record["global_prompt"] == first["current"] and not record["improved"]
    assert record["review"] == {
        "decision": "reject",
        "note": "too long",
        "candidate_validation_accuracy": first["candidate_score"],
        "candidate_prompt": first["candidate"],
    }
    assert record["validation_accuracy"] == saved["baseline_accuracy"]  # the kept prompt's score
    assert second["round"] == 2 and second["current"] == first["current"]
    state = await _continue(config, url, {"decision": "approve"})
    assert [r["review"]["decision"] for r in state["history"]] == ["reject", "approve"]
    assert state["history"][1]["review"]["note"] is None


async def test_serving_returns_only_approved_prompts_while_a_round_awaits_review(make_config, tmp_path):
    config, url = _config(make_config, rounds=1), _url(tmp_path)
    pause = await _pause(config, url)
    assert await aload_prompt("r", checkpointer=url, which="latest") == pause["current"]
    assert await aload_prompt("r", checkpointer=url, which="best") == pause["current"]  # the scored initial prompt
    now = [0.0]
    seen = ScriptedChatModel(respond=lambda system, user: "ok")
    middleware = FederatedPrompt("r", checkpointer=url, refresh_s=1, clock=lambda: now[0])
    agent = create_agent(seen, tools=[], system_prompt="own prompt", middleware=[middleware])
    await agent.ainvoke({"messages": [("user", "while paused")]})
    await _continue(config, url, {"decision": "approve"})
    assert await aload_prompt("r", checkpointer=url, which="latest") == pause["candidate"]
    now[0] = 10.0
    await agent.ainvoke({"messages": [("user", "after the review")]})
    assert [system for system, _ in seen.requests] == [pause["current"], pause["candidate"]]


async def test_a_decision_is_needed_to_continue_and_only_while_awaiting_review(make_config, tmp_path):
    config, url = _config(make_config, rounds=1), _url(tmp_path)
    with pytest.raises(ValueError, match="not awaiting review"):
        await _continue(config, url, {"decision": "approve"})  # no such run yet
    await _pause(config, url)
    async with create_checkpointer(url) as checkpointer:
        with pytest.raises(ValueError, match="round 1 awaits review"):
            await run_federated(config, run_id="r", checkpointer=checkpointer, models=SIMULATED, resume=True)
    with pytest.raises(ValueError, match="needs a non-empty prompt"):
        await _continue(config, url, {"decision": "edit", "prompt": "  "})
    assert run_status(await _saved(url)) == "awaiting_review"  # nothing was lost


async def test_a_resume_stopped_while_applying_the_decision_continues_from_it(make_config, tmp_path):
    config, url = _config(make_config, rounds=1), _url(tmp_path)
    await _pause(config, url)
    with pytest.raises(ValueError, match="model endpoint rejected"):  # scoring the edit fails
        await _continue(config, url, {"decision": "edit", "prompt": EDITED}, {**SIMULATED, "task": FailingTask()})
    saved = await _saved(url)
    assert run_status(saved) == "incomplete"  # the answer is saved: no second review needed
    async with create_checkpointer(url) as checkpointer:
        state = await run_federated(config, run_id="r", checkpointer=checkpointer, models=SIMULATED, resume=True)
    assert state["history"][0]["global_prompt"] == EDITED and state["history"][0]["review"]["decision"] == "edit"


async def test_without_review_the_run_does_not_pause(make_config):
    state = await run_federated(load_config(make_config(clients=2, rounds=1)), models=SIMULATED)
    assert "review" not in state["history"][0] and run_status(state) == "completed"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("approve", "is an object"),
        ({"decision": "maybe"}, "decision must be one of approve, edit, reject"),
        ({"decision": "reject", "prompt": "x"}, "only an 'edit' decision takes a prompt"),
        ({"decision": "approve", "why": "x"}, "not why"),
        ({"decision": "approve", "note": 3}, "note must be text"),
    ],
)
def test_invalid_decisions_are_refused_with_the_reason(value: Any, problem: str):
    with pytest.raises(ValueError, match=problem):
        parse_decision(value)


def test_the_quorum_pause_stays_distinct():
    assert not issubclass(RunAwaitingReview, RunPaused) and not issubclass(RunPaused, RunAwaitingReview)


async def test_the_report_shows_the_pause_and_the_decisions(make_config, tmp_path):
    from fedtextgrad_graph.report import write_report

    config, url = _config(make_config, rounds=2), _url(tmp_path)
    await _pause(config, url)
    page = write_report(await _saved(url), tmp_path / "paused", run_id="r").html.read_text()
    assert "Round 1 awaits review" in page and "fedtextgrad-graph review r" in page
    async with create_checkpointer(url) as checkpointer:
        with pytest.raises(RunAwaitingReview):
            await run_federated(
                config, run_id="r", checkpointer=checkpointer, models=SIMULATED, resume=True,
                review={"decision": "reject", "note": "loses the <format> line"},
            )
    page = write_report(await _saved(url), tmp_path / "second", run_id="r").html.read_text()
    assert "Review: reject (the merged prompt scored" in page and "note: loses the &lt;format&gt; line" in page
