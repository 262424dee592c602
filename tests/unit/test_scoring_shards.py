"""A scoring phase interrupted after some of its shards finished resumes without scoring them
again, and records the phase as an uninterrupted run does: here a federated phase (each
client's score a shard), a resume with other shards and the validation screen; a server-held
phase killed with SIGKILL: tests/integration/test_scoring_resume.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from fedtextgrad_graph import SimulatedChatModel, load_config, run_federated
from fedtextgrad_graph.runs import results_payload
from fedtextgrad_graph.server import FederationRuntime
from fedtextgrad_graph.transport.local import LocalTransport
from fedtextgrad_graph.wire import EvaluateRequest

from ..conftest import counting_examples

VALIDATION = {ex["input"] for ex in counting_examples(50)[30:40]}  # the config's validation split


class Crash(BaseException):
    """The process dying: not an error the run handles."""


class RecordingTaskModel(SimulatedChatModel):
    """The simulated task model, recording the tags of each call answering a validation example."""

    scored: list[tuple[str, ...]] = Field(default_factory=list)

    async def _agenerate(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        if messages[-1].text in VALIDATION:
            self.scored.append(tuple(run_manager.tags) if run_manager else ())
        return await super()._agenerate(messages, stop, run_manager, **kwargs)


def _models(task: SimulatedChatModel) -> dict[str, SimulatedChatModel]:
    return {"task": task, "optimizer": SimulatedChatModel(), "aggregator": SimulatedChatModel(), "judge": SimulatedChatModel()}


def _validation_calls(model: RecordingTaskModel, client: str) -> int:
    return sum(1 for tags in model.scored if f"client:{client}" in tags and "round:1" in tags)


async def test_a_crash_mid_federated_validation_resumes_with_the_scores_already_made(make_config, monkeypatch):
    scoring = '[evaluation]\nmode = "federated"\nbaseline = false\ntest = false\n[screening]\nscreens = []\n'
    config = load_config(make_config(clients=3, rounds=1, extra=scoring))
    saver = InMemorySaver()
    evaluate = LocalTransport.evaluate

    async def crash_while_client_3_scores(self: LocalTransport, request: EvaluateRequest) -> Any:
        if request["client_id"] == "client-3":
            await asyncio.sleep(0.3)  # clients 1 and 2 finish scoring meanwhile
            raise Crash
        return await evaluate(self, request)

    monkeypatch.setattr(LocalTransport, "evaluate", crash_while_client_3_scores)
    crashing = RecordingTaskModel()
    with pytest.raises(Crash):
        await run_federated(config, run_id="crash", models=_models(crashing), checkpointer=saver)
    assert _validation_calls(crashing, "client-1") > 0 and _validation_calls(crashing, "client-2") > 0
    monkeypatch.setattr(LocalTransport, "evaluate", evaluate)

    resumed_model = RecordingTaskModel()
    state = await run_federated(config, run_id="crash", models=_models(resumed_model), checkpointer=saver, resume=True)
    # Clients 1 and 2 had scored the merged prompt: their scores come from the checkpoint.
    assert _validation_calls(resumed_model, "client-1") == _validation_calls(resumed_model, "client-2") == 0
    assert _validation_calls(resumed_model, "client-3") > 0

    reference_model = RecordingTaskModel()
    reference = await run_federated(config, run_id="reference", models=_models(reference_model), checkpointer=InMemorySaver())
    got, expected = state["history"][0], reference["history"][0]
    assert got["client_validation"] == expected["client_validation"] and set(got["client_validation"]) == {"client-1", "client-2", "client-3"}
    assert got["validation_accuracy"] == expected["validation_accuracy"]
    assert got["llm_calls"] == expected["llm_calls"] and got["llm_usage"] == expected["llm_usage"]
    assert results_payload(state, run_id="crash")["llm_usage"] == results_payload(reference, run_id="reference")["llm_usage"]


async def test_a_resume_with_other_shards_scores_again_the_shards_that_no_longer_match(make_config, monkeypatch):
    """Resumed from Python with another ``shard_size``, a saved shard is used only where it still
    covers the same examples; the counts are those of an uninterrupted run."""
    scoring = "[evaluation]\nshard_size = {size}\ntest = false\n"
    accuracy = FederationRuntime.accuracy

    async def crash_on_the_last_shard(self: FederationRuntime, prompt: str, examples: list[Any], task: str, **kwargs: Any) -> Any:
        if len(examples) == 1:  # the validation split's 10 examples in shards of 3: the last one
            await asyncio.sleep(0.3)  # the other shards finish and are saved meanwhile
            raise Crash
        return await accuracy(self, prompt, examples, task, **kwargs)

    monkeypatch.setattr(FederationRuntime, "accuracy", crash_on_the_last_shard)
    saver = InMemorySaver()
    by_threes = load_config(make_config(clients=2, rounds=1, extra=scoring.format(size=3)))
    with pytest.raises(Crash):
        await run_federated(by_threes, run_id="r", models=_models(RecordingTaskModel()), checkpointer=saver)
    monkeypatch.setattr(FederationRuntime, "accuracy", accuracy)

    by_fours = load_config(make_config(clients=2, rounds=1, extra=scoring.format(size=4), name="fours.toml"))
    state = await run_federated(by_fours, run_id="r", models=_models(RecordingTaskModel()), checkpointer=saver, resume=True)
    reference = await run_federated(by_fours, run_id="ref", models=_models(RecordingTaskModel()), checkpointer=InMemorySaver())
    assert state["baseline_by_task"] == reference["baseline_by_task"] and state["baseline_by_task"]["counting"]["total"] == 10
    assert state["baseline_llm_calls"] == reference["baseline_llm_calls"] == 10


async def test_a_crash_mid_screen_resumes_with_the_prompts_already_scored(make_config, monkeypatch):
    """The validation screen's scores are shards too (each distinct prompt on a task's sample):
    a run that crashes while screening scores again only the prompt it had not finished, and
    records the round as an uninterrupted run does."""
    config = load_config(make_config(clients=3, rounds=1, extra="[evaluation]\nbaseline = false\ntest = false\n"))
    accuracy = FederationRuntime.accuracy
    started = 0

    async def crash_on_the_second_prompt(self: FederationRuntime, prompt: str, examples: list[Any], task: str, **kwargs: Any) -> Any:
        nonlocal started
        started += 1
        if started == 2:  # the screen's second prompt: the others finish and are saved meanwhile
            await asyncio.sleep(0.3)
            raise Crash
        return await accuracy(self, prompt, examples, task, **kwargs)

    monkeypatch.setattr(FederationRuntime, "accuracy", crash_on_the_second_prompt)
    saver = InMemorySaver()
    with pytest.raises(Crash):
        await run_federated(config, run_id="s", models=_models(RecordingTaskModel()), checkpointer=saver)
    monkeypatch.setattr(FederationRuntime, "accuracy", accuracy)

    resumed_model, reference_model = RecordingTaskModel(), RecordingTaskModel()
    state = await run_federated(config, run_id="s", models=_models(resumed_model), checkpointer=saver, resume=True)
    reference = await run_federated(config, run_id="ref", models=_models(reference_model), checkpointer=InMemorySaver())

    def server_calls(model: RecordingTaskModel) -> int:
        return sum(1 for tags in model.scored if not any(tag.startswith("client:") for tag in tags))

    got, expected = state["history"][0], reference["history"][0]
    prompts = expected["screen_llm_calls"] // 10  # the distinct prompts screened, 10 examples each
    assert prompts >= 2
    assert server_calls(reference_model) == 10 * prompts + 10  # the screen, then the validation
    assert server_calls(resumed_model) == 10 + 10  # the unfinished prompt, then the validation
    for key in ("screen_scores", "screen_llm_calls", "screened_out", "llm_calls", "llm_usage", "empty_replies", "validation_accuracy"):
        assert got[key] == expected[key], key
