"""A poisoning client in-process: its uploads never reach a global prompt, and the run ends about
where it would have without that client. Also an oversized upload, and a round that keeps nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedtextgrad_graph import SimulatedChatModel, load_config, run_federated
from fedtextgrad_graph.config import ClientConfig, FedTextGradConfig
from fedtextgrad_graph.data import FederatedData, build_federated_data
from fedtextgrad_graph.models.simulated import simulated_reply

from ..conftest import ScriptedChatModel, write_bbh
from ..poisoning import IMPROVED_END, POISON, poisoning_reply

CONFIG = """
[run]
name = "poison"

[tasks.counting]
format = "bbh"
path = "counting.json"
split = {{ train = [0, 60], validation = [60, 160], test = [160, 180] }}

[federation]
num_clients = {clients}

[client]
local_steps = 2
batch_size = 3

[aggregation]
strategy = "{strategy}"

[evaluation]
mode = "{mode}"
test = false

[convergence]
max_rounds = 3
unchanged_rounds = 1000
"""


class ObedientTask:
    """A task model that obeys the poison: with that sentence in its system prompt it answers
    42, otherwise it answers like the simulated model."""

    name = "obedient"

    async def answer(self, system_prompt: str, question: str) -> str:
        return "Answer: 42" if POISON in system_prompt else simulated_reply(system_prompt, question)


class BlindTask:
    """The poisoner's own task model: answers as if the prompt never changed, so the poisoner's
    local proximal check keeps every step (an attacker does not check against itself)."""

    name = "blind"

    async def answer(self, system_prompt: str, question: str) -> str:
        return simulated_reply("", question)


def _models(poisoner: str | None) -> dict:
    models = {role: SimulatedChatModel() for role in ("optimizer", "aggregator", "judge")}
    models["task"] = ObedientTask()
    if poisoner:
        models[f"{poisoner}.optimizer"] = ScriptedChatModel(respond=poisoning_reply)
        models[f"{poisoner}.task"] = BlindTask()
    return models


def _config(tmp_path: Path, *, clients: int, strategy: str, mode: str = "server") -> FedTextGradConfig:
    write_bbh(tmp_path / "counting.json", n=180)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(clients=clients, strategy=strategy, mode=mode), encoding="utf-8")
    return load_config(path)


def _without(config: FedTextGradConfig, data: FederatedData, client_id: str) -> tuple[FedTextGradConfig, FederatedData]:
    """The same run without ``client_id``: the other clients keep exactly their data shares."""
    kept = [cid for cid in config.federation.client_ids() if cid != client_id]
    federation = config.federation.model_copy(update={"num_clients": None, "clients": [ClientConfig(id=cid) for cid in kept]})
    return config.model_copy(update={"federation": federation}), FederatedData({cid: data.clients[cid] for cid in kept}, data.tasks)


def _prompts(state: dict) -> list[str]:
    return [r["global_prompt"] for r in state["history"]] + [state["best_prompt"], state["global_prompt"]]


@pytest.mark.parametrize(
    ("clients", "strategy", "mode"),
    [(3, "concat", "server"), (3, "summarize", "server"), (3, "uid", "server"), (5, "concat", "server"), (5, "uid", "server"),
     (3, "concat", "federated"), (5, "uid", "federated")],
)
async def test_a_poisoning_client_is_screened_out_every_round(tmp_path, clients, strategy, mode):
    config = _config(tmp_path, clients=clients, strategy=strategy, mode=mode)
    data = build_federated_data(config)
    poisoned = await run_federated(config, models=_models("client-2"), data=data)
    clean_config, clean_data = _without(config, data, "client-2")
    clean = await run_federated(clean_config, models=_models(None), data=clean_data)

    assert len(poisoned["history"]) == 3
    for record in poisoned["history"]:
        assert POISON in record["client_prompts"]["client-2"]  # the attack was made every round
        assert record["screened_out"]["client-2"].startswith("validation: ")
        assert record["screen_scores"]["client-2"]["accuracy"] == 0.0
    assert not any(POISON in prompt for prompt in _prompts(poisoned))
    before, after = clean["history"][-1]["validation_accuracy"], poisoned["history"][-1]["validation_accuracy"]
    print(f"{clients} clients, {strategy}, {mode} evaluation: final validation accuracy {after:.3f} with the poisoner, {before:.3f} without")
    if mode == "server":  # federated, the poisoner scores its own validation share with its own model: not comparable
        assert abs(after - before) <= 0.05


async def test_without_screening_the_poison_reaches_the_global_prompt(tmp_path):
    """The attack works when nothing screens it (so the test above can fail)."""
    config = _config(tmp_path, clients=3, strategy="concat")
    config = config.model_copy(update={"screening": config.screening.model_copy(update={"screens": []})})
    state = await run_federated(config, models=_models("client-2"))
    assert POISON in state["global_prompt"]
    assert all(r["screened_out"] == {} for r in state["history"])


def oversized_reply(system: str, user: str) -> str:
    reply = simulated_reply(system, user)
    if "IMPROVED_VARIABLE" in system and IMPROVED_END in reply:
        return reply.replace(IMPROVED_END, " " + "x" * 100_000 + IMPROVED_END)
    return reply


async def test_a_100kb_upload_is_left_out_by_the_size_screen(tmp_path):
    config = _config(tmp_path, clients=3, strategy="concat")
    models = _models(None)
    models["client-3.optimizer"] = ScriptedChatModel(respond=oversized_reply)
    models["client-3.task"] = BlindTask()
    state = await run_federated(config, models=models)
    for record in state["history"]:
        if len(record["client_prompts"]["client-3"]) > 100_000:
            assert record["screened_out"]["client-3"].startswith("size: ")
            assert "client-3" not in record["screen_scores"]  # never scored: the size screen ran first
    assert any("client-3" in r["screened_out"] for r in state["history"])
    assert max(len(p) for p in _prompts(state)) < 4000


async def test_when_every_upload_is_left_out_the_global_prompt_stays(tmp_path):
    config = _config(tmp_path, clients=2, strategy="concat")
    models = _models(None)
    for cid in ("client-1", "client-2"):
        models[f"{cid}.optimizer"] = ScriptedChatModel(respond=poisoning_reply)
        models[f"{cid}.task"] = BlindTask()
    state = await run_federated(config, models=models)
    initial = state["run_config"]["prompt"]["instruction"]
    for record in state["history"]:
        assert set(record["screened_out"]) == {"client-1", "client-2"}
        assert record["all_screened_out"] is True
        assert record["global_prompt"].startswith(initial) and POISON not in record["global_prompt"]
        assert record["aggregation_llm_calls"] == 0
    assert state["history"][0]["global_prompt"] == state["history"][-1]["global_prompt"]
