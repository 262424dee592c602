"""The client step with fake chat models: proximal accept/revert and malformed optimizer replies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedtextgrad_graph.config import load_config
from fedtextgrad_graph.server import FederationRuntime
from fedtextgrad_graph.server.graph import train_request
from fedtextgrad_graph.wire import ClientTask

from ..conftest import ScriptedChatModel

FORMAT = "The last line of your response should be of the following format: 'Answer: $VALUE' where VALUE is a numerical value."


def _answers(config_path: Path) -> dict[str, str]:
    data = json.loads((config_path.parent / "counting.json").read_text())
    return {ex["input"]: ex["target"] for ex in data["examples"]}


def _task_model(answers: dict[str, str]) -> ScriptedChatModel:
    """Answers correctly when the system prompt says GOOD, otherwise wrongly."""
    return ScriptedChatModel(respond=lambda system, user: f"Answer: {answers[user] if 'GOOD' in system else 999}")


def _optimizer(update: str) -> ScriptedChatModel:
    def respond(system: str, user: str) -> str:
        if "IMPROVED_VARIABLE" in system:
            return update
        return "Feedback: state the strategy more clearly."

    return ScriptedChatModel(respond=respond)


async def _one_client_round(config_path: Path, task: ScriptedChatModel, optimizer: ScriptedChatModel, prompt: str):
    config = load_config(config_path)
    runtime = FederationRuntime.create(
        config, models={"task": task, "optimizer": optimizer, "aggregator": optimizer, "judge": task}
    )
    request = train_request(config, ClientTask(client_id="client-1", round=1, global_prompt=prompt), run_id="t")
    try:
        return await runtime.transport.train(request)
    finally:
        await runtime.aclose()


def _config(make_config, proximal: str = "non_decreasing") -> Path:
    path = make_config(clients=1, local_steps=1)
    text = path.read_text().replace('batch_size = 3', f'batch_size = 3\nproximal = "{proximal}"')
    path.write_text(text)
    return path


async def test_improving_update_is_accepted(make_config):
    path = _config(make_config)
    task = _task_model(_answers(path))
    optimizer = _optimizer(f"<IMPROVED_VARIABLE>GOOD: count every item. {FORMAT}</IMPROVED_VARIABLE>")
    update = await _one_client_round(path, task, optimizer, f"Think. {FORMAT}")
    assert update["prompt"] == f"GOOD: count every item. {FORMAT}"
    [step] = update["steps"]
    assert (step["outcome"], step["train_accuracy"], step["updated_accuracy"]) == ("accepted", 0.0, 1.0)
    assert len(task.requests) == 6  # 3 forward + 3 proximal re-scores of the same batch
    tgd_request = next(user for system, user in optimizer.requests if "IMPROVED_VARIABLE" in system)
    assert FORMAT in tgd_request  # the format instruction is passed to TGD as a constraint


async def test_worse_update_is_reverted(make_config):
    path = _config(make_config)
    task = _task_model(_answers(path))
    optimizer = _optimizer(f"<IMPROVED_VARIABLE>Guess quickly. {FORMAT}</IMPROVED_VARIABLE>")
    start = f"GOOD: think step by step. {FORMAT}"
    update = await _one_client_round(path, task, optimizer, start)
    [step] = update["steps"]
    assert (step["outcome"], step["train_accuracy"], step["updated_accuracy"]) == ("rejected", 1.0, 0.0)
    assert update["prompt"] == start
    assert (update["accepted"], update["rejected"], update["malformed"]) == (0, 1, 0)


@pytest.mark.parametrize(("rule", "outcome"), [("non_decreasing", "accepted"), ("strict", "rejected"), ("off", "accepted")])
async def test_proximal_rule_on_equal_accuracy(make_config, rule, outcome):
    path = _config(make_config, proximal=rule)
    task = _task_model(_answers(path))
    optimizer = _optimizer(f"<IMPROVED_VARIABLE>Still wrong, differently. {FORMAT}</IMPROVED_VARIABLE>")
    update = await _one_client_round(path, task, optimizer, f"Think. {FORMAT}")
    [step] = update["steps"]
    assert step["outcome"] == outcome
    assert len(task.requests) == (3 if rule == "off" else 6)  # "off" never re-scores


@pytest.mark.parametrize(
    "reply",
    [
        "I cannot improve this prompt.",
        "<IMPROVED_VARIABLE>   </IMPROVED_VARIABLE>",
        "<IMPROVED_VARIABLE>GOOD: count every item, then",
    ],
    ids=["no-tags", "empty-prompt", "no-closing-tag"],
)
async def test_malformed_optimizer_reply_keeps_prompt(make_config, reply):
    path = _config(make_config)
    task = _task_model(_answers(path))
    start = f"Think. {FORMAT}"
    update = await _one_client_round(path, task, _optimizer(reply), start)
    [step] = update["steps"]
    assert step["outcome"] == "malformed"
    assert step["updated_accuracy"] is None
    assert update["prompt"] == start
    assert (update["accepted"], update["rejected"], update["malformed"]) == (0, 0, 1)
    assert len(task.requests) == 3  # no re-scoring after a rejected step


async def test_many_local_steps_fit_the_recursion_limit(make_config):
    path = make_config(clients=1, local_steps=12)
    update = await _one_client_round(
        path, _task_model(_answers(path)), _optimizer(f"<IMPROVED_VARIABLE>GOOD. {FORMAT}</IMPROVED_VARIABLE>"), f"Think. {FORMAT}"
    )
    assert len(update["steps"]) == 12


async def test_local_steps_loop_and_minibatches_come_from_private_data(make_config):
    path = make_config(clients=1, local_steps=3)
    answers = _answers(path)
    task = _task_model(answers)
    update = await _one_client_round(
        path, task, _optimizer(f"<IMPROVED_VARIABLE>GOOD. {FORMAT}</IMPROVED_VARIABLE>"), f"Think. {FORMAT}"
    )
    assert [s["step"] for s in update["steps"]] == [1, 2, 3]
    train = list(answers)[:30]
    assert all(user in train for _, user in task.requests)  # only training examples are used
    assert update["llm_calls"] == sum(s["llm_calls"] for s in update["steps"]) > 0
