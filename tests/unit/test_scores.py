"""Scores beyond the pooled figure and the cost of a run: validation and test per task, the
update success rate per round, and the provider-reported tokens of every LLM call."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from rich.console import Console

from fedtextgrad_graph import RunEvent, load_config, run_federated
from fedtextgrad_graph.cli import view
from fedtextgrad_graph.cli.scores import round_work_table, task_scores_table, tokens_line
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.models import LLMCallRecord, LLMGateway, RetryPolicy, SimulatedChatModel
from fedtextgrad_graph.models.usage import metering, record_reported, tokens_or_unknown
from fedtextgrad_graph.report import write_report
from fedtextgrad_graph.runs import results_payload
from fedtextgrad_graph.server.evaluation import _federated
from fedtextgrad_graph.text import count_tokens
from fedtextgrad_graph.transport.flower.messages import typed
from fedtextgrad_graph.wire import ClientUpdate, EvaluateRequest, EvaluateResult

from ..conftest import ScriptedChatModel, write_bbh
from ..graph_node import in_graph_node


class UsageModel(BaseChatModel):
    """Replies ``replies`` in turn, each reporting ``(input, output)`` tokens (or none)."""

    replies: list[tuple[str, tuple[int, int] | None]]

    @property
    def _llm_type(self) -> str:
        return "usage"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        text, usage = self.replies.pop(0)
        meta = None if usage is None else {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text, usage_metadata=meta))])


async def test_the_gateway_records_each_reply_usage_and_counts_calls_without_it():
    records: list[LLMCallRecord] = []
    gateway = LLMGateway(max_concurrency=2, retry=RetryPolicy(backoff_s=0, empty_retries=1), on_call=records.append)
    model = UsageModel(replies=[("a", (10, 3)), ("", (4, 0)), ("b", (5, 2)), ("c", None)])
    with metering(client_id=None) as server, metering(client_id="c1") as client:
        await gateway.generate(model, "s", "u", role="task")
        await gateway.generate(model, "s", "u", role="task")  # an empty reply, asked again: one call, two replies
        await gateway.generate(model, "s", "u", role="task", client_id="c1")
    assert [(r.input_tokens, r.output_tokens) for r in records] == [(10, 3), (9, 2), (None, None)]
    assert server.count() == {"input": 19, "output": 5, "calls_without_usage": 0}
    assert client.count() == {"input": 0, "output": 0, "calls_without_usage": 1}


async def test_what_a_site_reports_counts_for_the_server_and_an_older_site_counts_as_unknown():
    with metering(client_id=None) as server, metering(client_id="c1") as client:
        record_reported({"input": 7, "output": 2, "calls_without_usage": 1})
        record_reported(tokens_or_unknown({"llm_calls": 4}))  # a site that predates token counts
    assert server.count() == {"input": 7, "output": 2, "calls_without_usage": 5}
    assert client.count() == {"input": 0, "output": 0, "calls_without_usage": 0}


def test_the_simulated_model_reports_its_own_wordpiece_usage():
    messages = [SystemMessage("Count carefully."), HumanMessage("I have two apples and a plum. How many fruits do I have?")]
    reply = SimulatedChatModel().invoke(messages)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == sum(count_tokens(m.text) for m in messages) > 0
    assert reply.usage_metadata["output_tokens"] == count_tokens(reply.text) > 0


def test_updates_and_scores_parse_with_and_without_tokens():
    tokens = {"input": 12, "output": 3, "calls_without_usage": 0}
    score = {"client_id": "c1", "correct": 1, "total": 2, "llm_calls": 2}
    assert typed(json.loads(json.dumps({**score, "llm_tokens": tokens})), EvaluateResult)["llm_tokens"] == tokens
    assert "llm_tokens" not in typed(score, EvaluateResult)  # an older site
    update = {
        "client_id": "c1", "round": 1, "task": "t", "prompt": "p", "steps": [], "accepted": 0, "rejected": 0,
        "malformed": 0, "llm_calls": 0, "models": {}, "blocked": 0, "redacted": 0,
    }  # fmt: skip
    assert typed({**update, "llm_tokens": tokens}, ClientUpdate)["llm_tokens"] == tokens
    assert "llm_tokens" not in typed(update, ClientUpdate)
    with pytest.raises(ValueError, match="llm_tokens"):
        typed({**update, "llm_tokens": {"input": "many"}}, ClientUpdate)


TWO_TASKS = """
[run]
name = "scores"
seed = 0
max_concurrency = 8

[tasks.apples]
format = "bbh"
path = "apples.json"
split = {{ train = [0, 20], validation = [20, 30], test = [30, 40] }}

[tasks.plums]
format = "bbh"
path = "plums.json"
split = {{ train = [0, 20], validation = [20, 26], test = [26, 32] }}

[federation]
partition = "heterogeneous"
clients = [{{ id = "a1", task = "apples" }}, {{ id = "a2", task = "apples" }}, {{ id = "p1", task = "plums" }}]

[client]
local_steps = 2
batch_size = 3

[aggregation]
strategy = "summarize"

[evaluation]
mode = "{mode}"

[convergence]
max_rounds = 2
unchanged_rounds = 1000
"""


def _two_tasks(tmp_path: Path, mode: str) -> Path:
    write_bbh(tmp_path / "apples.json", 40, seed=1)
    write_bbh(tmp_path / "plums.json", 40, seed=2)
    path = tmp_path / "scores.toml"
    path.write_text(TWO_TASKS.format(mode=mode), encoding="utf-8")
    return path


def _sum(calls: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "input": sum(c["input_tokens"] or 0 for c in calls),
        "output": sum(c["output_tokens"] or 0 for c in calls),
        "calls_without_usage": sum(c["input_tokens"] is None for c in calls),
    }


@pytest.mark.parametrize("mode", ["server", "federated"])
async def test_a_run_records_scores_by_task_its_step_success_and_every_call_tokens(tmp_path, mode):
    config = load_config(_two_tasks(tmp_path, mode)).with_model_override("simulated")
    events: list[RunEvent] = []
    # The task model reports no usage: its calls are counted as such, never estimated.
    task = ScriptedChatModel(respond=lambda system, user: "Answer: 3")
    state = await run_federated(config, run_id="scores", models={"task": task}, on_event=events.append)
    payload = results_payload(state, run_id="scores")
    calls = [e.data for e in events if e.kind == "llm_call"]
    assert {c["role"] for c in calls} >= {"task", "optimizer", "aggregator"}
    assert all((c["input_tokens"] is None) == (c["role"] == "task") for c in calls)

    assert payload["llm_tokens"] == _sum(calls)  # the run: every call, exactly once
    assert payload["llm_calls"] == len(calls)
    assert payload["llm_tokens"]["calls_without_usage"] == sum(c["role"] == "task" for c in calls) > 0
    for record in payload["history"]:
        assert record["llm_tokens"] == _sum([c for c in calls if c["round"] == record["round"]])
        metrics = record["client_metrics"].values()
        attempted = sum(len(m["steps"]) for m in metrics)
        assert attempted == 6 and record["update_success_rate"] == sum(m["accepted"] for m in metrics) / attempted
        by_task = record["validation_by_task"]
        assert list(by_task) == ["apples", "plums"]
        assert {t: s["total"] for t, s in by_task.items()} == {"apples": 10, "plums": 6}
        assert sum(s["correct"] for s in by_task.values()) == record["validation_correct"]
        if mode == "federated":  # the clients' own counts, summed by their task
            clients = record["client_validation"]
            assert by_task["apples"]["correct"] == clients["a1"]["correct"] + clients["a2"]["correct"]
            assert by_task["plums"] == clients["p1"]
    for key in ("baseline_by_task", "test_by_task"):
        assert set(payload[key]) == {"apples", "plums"}
        assert all(s["accuracy"] == s["correct"] / s["total"] for s in payload[key].values())
    assert sum(s["correct"] for s in payload["test_by_task"].values()) / sum(
        s["total"] for s in payload["test_by_task"].values()
    ) == pytest.approx(payload["test_accuracy"])


def _fits(table: Any, width: int) -> list[str]:
    console = Console(record=True, width=width, force_terminal=False)
    console.print(table)
    return console.export_text().splitlines()


def test_status_tables_of_several_tasks_fit_80_columns_and_older_runs_show_none():
    score = {"correct": 10, "total": 10, "accuracy": 1.0}
    tasks = {name: score for name in ("object_counting", "multistep_arithmetic", "word_problems")}
    history = [
        {
            "round": r,
            "validation_by_task": tasks,
            "update_success_rate": 0.5,
            "llm_tokens": {"input": 1234567, "output": 123456, "calls_without_usage": 12},
            "client_metrics": {"c": {"accepted": 1, "steps": [{}, {}]}},
        }
        for r in range(1, 6)
    ]
    payload = {"history": history, "baseline_by_task": tasks, "test_by_task": tasks, "llm_tokens": history[0]["llm_tokens"]}
    by_task = _fits(task_scores_table(payload), 80)
    assert len(by_task) == 3 + 3 and all(len(line) <= 80 for line in by_task)  # title, head, rule, a line per task
    assert "round 5" in by_task[1] and "test" in by_task[1] and "round 1" not in by_task[1]  # the latest rounds
    work = _fits(round_work_table(history), 80)
    assert len(work) == 3 + 5 and "0.50" in work[3] and "1/2" in work[3]
    assert tokens_line(payload) == (
        "LLM tokens (provider-reported, rounds, baseline and test): 1234567 in, 123456 out; "
        "12 call(s) reported no usage (not counted)"
    )
    older = {"history": [{"round": 1, "client_metrics": {}, "validation_accuracy": 0.5}]}
    assert task_scores_table(older) is None and round_work_table(older["history"]) is None and tokens_line(older) is None
    one_task = {"history": [{**history[0], "validation_by_task": {"apples": score}}], "test_by_task": {"apples": score}}
    assert task_scores_table(one_task) is None  # the pooled figures are that task's


async def test_the_report_shows_each_task_and_each_round_cost(tmp_path):
    config = load_config(_two_tasks(tmp_path, "server")).with_model_override("simulated")
    state = await run_federated(config, run_id="report")
    files = write_report(state, tmp_path / "report", run_id="report")
    page = files.html.read_text(encoding="utf-8")
    assert tmp_path / "report" / "validation_by_task.png" in files.plots
    assert 'id="task-scores"' in page and "<th>apples</th><th>plums</th>" in page
    tokens = state["history"][0]["llm_tokens"]
    assert f"<td>{tokens['input']} / {tokens['output']}</td>" in page
    total = results_payload(state, run_id="report")["llm_tokens"]
    assert f"{total['input']} in, {total['output']} out" in page


async def test_a_federated_test_sums_the_sites_counts_by_task_and_their_tokens(tmp_path):
    """Sites that hold the test data (Flower sites) score it; a site that predates token
    counts has its calls counted as calls without usage."""
    counts = {"a1": (3, 4), "a2": (0, 5), "p1": (2, 2)}

    class Sites:
        async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
            cid = request["client_id"]
            correct, total = counts[cid]
            result = EvaluateResult(client_id=cid, correct=correct, total=total, llm_calls=total)
            if cid != "a2":
                result["llm_tokens"] = {"input": 100 * total, "output": total, "calls_without_usage": 0}
            return result

    runtime = SimpleNamespace(config=load_config(_two_tasks(tmp_path, "federated")), transport=Sites())
    with metering(client_id=None) as tokens:
        score = await in_graph_node(lambda: _federated(runtime, "p", run_id="t", round=None, split="test"))  # type: ignore[arg-type]
    assert score.by_task == {
        "apples": {"correct": 3, "total": 9, "accuracy": 3 / 9},
        "plums": {"correct": 2, "total": 2, "accuracy": 1.0},
    }
    assert tokens.count() == {"input": 600, "output": 6, "calls_without_usage": 5}


def test_the_live_view_shows_each_task_and_the_round_cost(monkeypatch, tmp_path):
    captured = Console(record=True, width=200, force_terminal=False)
    monkeypatch.setattr(view, "console", captured)
    config = parse_config({"tasks": {"t": {"format": "bbh", "path": "x.json"}}, "federation": {"num_clients": 2}})
    score = {"correct": 4, "total": 5, "accuracy": 0.8}
    finished = {"round": 1, "validation_accuracy": 0.8, "improved": True, "new_best": True, "stop_reason": None, "dropped": {}}
    with view.RunView(None, config) as live:
        live.event(RunEvent("evaluated", {"validation_accuracy": 0.8, "dropped": {}, "client_validation": {}, "validation_by_task": {"a": score}}))
        live.event(RunEvent("evaluated", {"validation_accuracy": 0.8, "dropped": {}, "client_validation": {}, "validation_by_task": {"a": score, "b": score}}))
        tokens = {"input": 120, "output": 30, "calls_without_usage": 0}
        live.event(RunEvent("round_finished", {**finished, "update_success_rate": 0.25, "llm_tokens": tokens}))
    lines = captured.export_text().splitlines()
    assert [line for line in lines if "by task" in line] == ["  validation by task: a 0.80 4/5, b 0.80 4/5"]  # one task: the pooled line says it
    assert "  0.25 of local steps accepted; LLM tokens 120 in, 30 out" in lines
