"""The UID-aware merge in the round graph: repair or fallback keeps the client instructions, each
repair try is its own checkpointed step, every strategy's merge is measured, bad config is one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, build_round_graph, load_config, run_federated
from fedtextgrad_graph.config import ConfigError
from fedtextgrad_graph.models.simulated import simulated_reply
from fedtextgrad_graph.runs import RunEvent, stream_run
from fedtextgrad_graph.text import strip_format

from ..conftest import ScriptedChatModel

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "judge")}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
MERGE_KEYS = {
    "strategy", "units", "covered", "coverage", "missing", "estimator", "surprisal", "uid_score",
    "concat_uid_score", "length_ratio", "repairs", "fallback", "met_targets",
}  # fmt: skip


def _first_sentence_only(system: str, user: str) -> str:
    """The simulated merge, cut to its first sentence: it drops every other client instruction."""
    return _SENTENCE.split(simulated_reply(system, user))[0]


def _config(make_config, *, strategy: str = "uid", aggregation: str = "", rounds: int = 2) -> Path:
    path = make_config(clients=3, rounds=rounds, local_steps=2, strategy=strategy)
    path.write_text(path.read_text().replace(f'strategy = "{strategy}"', f'strategy = "{strategy}"\n{aggregation}'))
    return path


def _kept_instructions(record: dict, format_instruction: str) -> tuple[int, int]:
    """(client sentences found word for word in the global prompt, distinct client sentences)."""
    kept = [p for cid, p in record["client_prompts"].items() if cid not in record.get("screened_out", {})]
    sentences = {s for p in kept for s in _SENTENCE.split(strip_format(p, format_instruction)) if s}
    return sum(s in record["global_prompt"] for s in sentences), len(sentences)


@pytest.mark.parametrize("repair_reply", ["drops again", "keeps everything"])
async def test_a_merge_that_drops_instructions_still_keeps_90_percent(make_config, repair_reply):
    def respond(system: str, user: str) -> str:
        if "<MERGED>" in user and repair_reply == "keeps everything":
            return simulated_reply(system, user)  # the simulated merge of the client prompts: every sentence once
        return _first_sentence_only(system, user)

    aggregator = ScriptedChatModel(respond=respond)
    config = load_config(_config(make_config))
    events: list[RunEvent] = []
    state = await run_federated(config, models={**SIMULATED, "aggregator": aggregator}, on_event=events.append)
    fmt = config.prompt.format_instruction
    aggregated = [e.data for e in events if e.kind == "aggregated"]  # once per round, when the repair is done
    assert [e["merge"] for e in aggregated] == [r["merge"] for r in state["history"]]
    assert [e["prompt_chars"] for e in aggregated] == [len(r["global_prompt"]) for r in state["history"]]
    for record in state["history"]:
        found, total = _kept_instructions(record, fmt)
        assert total >= 3 and found >= 0.9 * total, record["global_prompt"]
        merge = record["merge"]
        assert set(merge) == MERGE_KEYS and merge["coverage"] >= 0.9 and merge["repairs"] >= 1
        assert merge["fallback"] == (repair_reply == "drops again")
        assert record["global_prompt"].endswith(fmt) and record["global_prompt"].count(fmt) == 1
    repairs = [u for _, u in aggregator.requests if "<MERGED>" in u]
    assert len(repairs) == sum(r["merge"]["repairs"] for r in state["history"])
    assert "missing from your merge" in repairs[0]


async def test_a_crash_mid_repair_resumes_at_the_repair_without_repeating_finished_tries(make_config):
    tries: list[str] = []
    crash_at = [2]

    def respond(system: str, user: str) -> str:
        if "<MERGED>" not in user:
            return _first_sentence_only(system, user)
        tries.append(user)
        if len(tries) == crash_at[0]:
            raise RuntimeError("aggregator crashed")
        return f"{_first_sentence_only(system, user)} Note {len(tries)}."  # a new candidate each try, still dropping

    config = load_config(_config(make_config, aggregation="repair_tries = 3", rounds=1))
    checkpointer = InMemorySaver()
    aggregator = ScriptedChatModel(respond=respond)
    runtime = FederationRuntime.create(config, models={**SIMULATED, "aggregator": aggregator})
    try:
        with pytest.raises(RuntimeError, match="aggregator crashed"):
            await stream_run(runtime, checkpointer, "crash", resume=False)
        saved = build_round_graph(runtime, checkpointer=checkpointer).get_state({"configurable": {"thread_id": "crash"}})
    finally:
        runtime.close()
    assert saved.next == ("repair",)
    assert len(saved.values["round_metrics"]["merge_progress"]["candidates"]) == 2  # the merge and the finished try 1
    merges_before = sum("<MERGED>" not in u for _, u in aggregator.requests)

    crash_at[0] = 0
    resumed = ScriptedChatModel(respond=respond)
    runtime = FederationRuntime.create(config, models={**SIMULATED, "aggregator": resumed})
    try:
        state = await stream_run(runtime, checkpointer, "crash", resume=True)
    finally:
        runtime.close()
    assert merges_before == 1 and not [u for _, u in resumed.requests if "<MERGED>" not in u]  # no second merge
    assert len(resumed.requests) == 2  # tries 2 and 3 only: try 1 was not paid for again
    record = state["history"][0]
    assert record["merge"]["repairs"] == 3 and record["merge"]["fallback"]
    assert record["aggregation_llm_calls"] == 1 + 1 + 2  # the merge and try 1 (checkpointed), tries 2 and 3 (the resume)


@pytest.mark.parametrize("strategy", ["concat", "summarize"])
async def test_concat_and_summarize_record_the_same_measures_without_repair(make_config, strategy):
    aggregator = ScriptedChatModel(respond=_first_sentence_only)
    config = load_config(_config(make_config, strategy=strategy, rounds=1))
    state = await run_federated(config, models={**SIMULATED, "aggregator": aggregator})
    merge = state["history"][0]["merge"]
    assert set(merge) == MERGE_KEYS and merge["strategy"] == strategy
    assert merge["repairs"] == 0 and merge["met_targets"] is None and not merge["fallback"]
    assert not [u for _, u in aggregator.requests if "<MERGED>" in u]
    if strategy == "summarize":
        assert merge["coverage"] < 0.9  # measured, and kept
    assert len(merge["surprisal"]["sentences"]) >= 1 and merge["estimator"] == "compression"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("min_coverage = 1.5", "min_coverage"),
        ("max_length_ratio = 0", "max_length_ratio"),
        ("repair_tries = -1", "repair_tries"),
        ('coverage = "vibes"', "coverage"),
    ],
)
def test_bad_targets_name_the_file_and_field(make_config, setting, message):
    path = _config(make_config, aggregation=setting)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line = str(caught.value)
    assert str(path.name) in line and f"aggregation.{message}" in line


def test_an_unknown_surprisal_estimator_is_one_line(make_config):
    config = load_config(_config(make_config, aggregation='surprisal = "gpt2"'))
    with pytest.raises(ConfigError, match=r"^aggregation.surprisal: unknown surprisal estimator 'gpt2'; choose one of compression, logprobs"):
        FederationRuntime.create(config, models={**SIMULATED, "aggregator": SimulatedChatModel()})


async def test_entailment_coverage_asks_the_aggregator_and_counts_as_aggregation_calls(make_config):
    aggregator = ScriptedChatModel(respond=simulated_reply)
    config = load_config(_config(make_config, aggregation='coverage = "entailment"', rounds=1))
    state = await run_federated(config, models={**SIMULATED, "aggregator": aggregator})
    record = state["history"][0]
    checks = [u for _, u in aggregator.requests if "does the prompt state it" in u]
    assert len(checks) == 1  # the merge's (the deduplicated concatenation covers every unit by construction)
    assert record["aggregation_llm_calls"] == len(aggregator.requests) == 2
    assert record["merge"]["coverage"] == 1.0 and record["merge"]["repairs"] == 0
