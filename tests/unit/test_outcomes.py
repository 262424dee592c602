"""What a round's numbers count: unchanged local steps, empty model replies, and each client's
own score under federated evaluation."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from fedtextgrad_graph import SimulatedChatModel, load_config, run_federated
from fedtextgrad_graph.cli import view
from fedtextgrad_graph.models import LLMCallRecord, LLMGateway, RetryPolicy
from fedtextgrad_graph.models.simulated import simulated_reply
from fedtextgrad_graph.report import write_report
from fedtextgrad_graph.server.evaluation import _federated
from fedtextgrad_graph.transport.flower.messages import typed
from fedtextgrad_graph.wire import ClientUpdate, EvaluateRequest, EvaluateResult

from ..conftest import ScriptedChatModel
from ..graph_node import in_graph_node
from .test_client import FORMAT, _answers, _config, _one_client_round, _optimizer, _task_model

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}


# --- unchanged steps --------------------------------------------------------------------------


@pytest.mark.parametrize("proximal", ["non_decreasing", "off"])
async def test_an_optimizer_that_echoes_the_prompt_makes_unchanged_steps(make_config, proximal):
    path = _config(make_config, proximal)
    task = _task_model(_answers(path))
    start = f"GOOD: count every item. {FORMAT}"
    update = await _one_client_round(path, task, _optimizer(f"<IMPROVED_VARIABLE>{start}</IMPROVED_VARIABLE>"), start)
    [step] = update["steps"]
    assert step["outcome"] == "unchanged" and step["updated_accuracy"] is None
    assert (update["accepted"], update["unchanged"]) == (0, 1)
    assert update["prompt"] == start
    assert len(task.requests) == 3  # the batch only: an unchanged prompt is not scored again


async def test_a_new_prompt_that_differs_only_in_whitespace_is_unchanged(make_config):
    path = _config(make_config)
    start = f"GOOD: count every item. {FORMAT}"
    echoed = "\n  " + start.replace(" ", "\n ") + "  "
    update = await _one_client_round(
        path, _task_model(_answers(path)), _optimizer(f"<IMPROVED_VARIABLE>{echoed}</IMPROVED_VARIABLE>"), start
    )
    assert update["steps"][0]["outcome"] == "unchanged"
    assert update["prompt"] == start  # the old text is kept, not its re-spaced copy


async def test_a_changed_prompt_is_still_accepted(make_config):
    path = _config(make_config)
    update = await _one_client_round(
        path, _task_model(_answers(path)), _optimizer(f"<IMPROVED_VARIABLE>GOOD. {FORMAT}</IMPROVED_VARIABLE>"), f"GOOD: x. {FORMAT}"
    )
    assert (update["accepted"], update["unchanged"]) == (1, 0)


# --- empty replies ----------------------------------------------------------------------------


async def test_the_gateway_retries_an_empty_reply_once_and_counts_it_once():
    replies = iter(["", "fine", "", "", "  \n"])
    model = ScriptedChatModel(respond=lambda system, user: next(replies))
    records: list[LLMCallRecord] = []
    gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(backoff_s=0.0), on_call=records.append)
    assert await gateway.generate(model, None, "q1", role="task", client_id="c") == "fine"
    assert await gateway.generate(model, None, "q2", role="task", client_id="c") == ""
    assert gateway.replies(client_id="c") == {"task": {"calls": 2, "empty": 1}}  # two calls, three requests
    assert gateway.replies(client_id=None) == {}
    assert [(r.attempts, r.errors, r.empty) for r in records] == [(2, ("empty_reply",), False), (2, ("empty_reply",), True)]
    off = LLMGateway(max_concurrency=1, retry=RetryPolicy(empty_retries=0))
    assert await off.generate(model, None, "q3", role="judge") == "  \n"
    assert off.replies(client_id=None) == {"judge": {"calls": 1, "empty": 1}}


def _silent_on_some_questions(answers: dict[str, str]) -> ScriptedChatModel:
    """A task model that says nothing to questions about apples, and answers the rest."""
    return ScriptedChatModel(respond=lambda system, user: "" if "apple" in user else f"Answer: {answers[user]}")


async def test_empty_replies_are_counted_per_caller_and_role_with_one_warning_each(make_config, caplog):
    extra = "\n[evaluation]\nbaseline = false\ntest = false\n\n[models]\nretry_backoff_s = 0\n"
    path = make_config(clients=3, rounds=2, local_steps=2, extra=extra)
    task = _silent_on_some_questions(_answers(path))
    models = {**SIMULATED, "task": task}
    with caplog.at_level(logging.WARNING, logger="fedtextgrad_graph.server.graph"):
        state = await run_federated(load_config(path), run_id="e", models=models)
    empty_requests = sum(1 for _, user in task.requests if "apple" in user)
    assert empty_requests > 0
    counted = 0
    for record in state["history"]:
        by_caller = record["empty_replies"]
        assert set(by_caller) == {"client-1", "client-2", "client-3", "server"}
        assert all(set(roles) == {"task"} for roles in by_caller.values())
        counted += sum(n["task"]["empty"] for n in by_caller.values())
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"round {record['round']}:")]
        assert len(lines) == len(set(lines)) == 4  # one per caller and role, not one per call
        n = by_caller["client-1"]["task"]
        assert f"round {record['round']}: client-1's task model returned {n['empty']} empty replies (of {n['calls']})" in lines
    assert counted * 2 == empty_requests  # each empty reply was asked for twice (one retry)
    calls = sum(n["task"]["calls"] for r in state["history"] for n in r["empty_replies"].values())
    assert calls == len(task.requests) - counted  # a retry is not another call


async def test_an_empty_optimizer_reply_is_malformed_and_counted(make_config):
    path = _config(make_config)
    update = await _one_client_round(path, _task_model(_answers(path)), _optimizer(""), f"Think. {FORMAT}")
    assert update["steps"][0]["outcome"] == "malformed"
    assert update["empty_replies"]["optimizer"]["empty"] == 1
    assert update["steps"][0]["empty_replies"] == update["empty_replies"] | {"task": {"calls": 3, "empty": 0}}


# --- per-client federated evaluation ----------------------------------------------------------


async def test_federated_evaluation_keeps_each_clients_counts(make_config):
    path = make_config(clients=3, rounds=2, extra='\n[evaluation]\nmode = "federated"\n')
    state = await run_federated(load_config(path), run_id="f", models=SIMULATED)
    for record in state["history"]:
        scores = record["client_validation"]
        assert set(scores) == {"client-1", "client-2", "client-3"}
        assert sum(s["correct"] for s in scores.values()) == record["validation_correct"]
        assert sum(s["total"] for s in scores.values()) == record["validation_total"]
        assert all(s["accuracy"] == s["correct"] / s["total"] for s in scores.values())
    assert state["client_test"] is None  # in-process, the server holds the test split: it scores it itself


async def test_a_federated_test_keeps_each_clients_counts(make_config):
    """Sites that hold test data (Flower sites) score the final test themselves."""
    counts = {"client-1": (3, 4), "client-2": (0, 5), "client-3": (2, 2)}

    class Sites:
        async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
            correct, total = counts[request["client_id"]]
            return EvaluateResult(client_id=request["client_id"], correct=correct, total=total, llm_calls=total)

    runtime = SimpleNamespace(config=load_config(make_config(clients=3)), transport=Sites())
    score = await in_graph_node(lambda: _federated(runtime, "p", run_id="t", round=None, split="test"))  # type: ignore[arg-type]
    assert score.by_client == {
        "client-1": {"correct": 3, "total": 4, "accuracy": 0.75},
        "client-2": {"correct": 0, "total": 5, "accuracy": 0.0},
        "client-3": {"correct": 2, "total": 2, "accuracy": 1.0},
    }
    assert (score.correct, score.total) == (5, 11)


async def test_server_held_evaluation_has_no_per_client_counts(make_config):
    state = await run_federated(load_config(make_config(clients=2, rounds=1)), run_id="s", models=SIMULATED)
    assert state["history"][0]["client_validation"] == {}
    assert state["client_test"] is None


# --- the wire: old sites keep working ---------------------------------------------------------


def _update(**changes: object) -> dict:
    step = {
        "client_id": "a", "round": 1, "step": 1, "batch_size": 3, "train_accuracy": 0.5, "updated_accuracy": None,
        "outcome": "unchanged", "prompt_chars": 10, "llm_calls": 5, "guard_caught": {}, "redacted": False,
        "empty_replies": {"task": {"calls": 3, "empty": 1}},
    }  # fmt: skip
    update = {
        "client_id": "a", "round": 1, "task": "t", "prompt": "p", "steps": [step], "accepted": 0, "rejected": 0,
        "malformed": 0, "llm_calls": 5, "models": {}, "blocked": 0, "redacted": 0, "unchanged": 1,
        "empty_replies": {"task": {"calls": 3, "empty": 1}},
    }  # fmt: skip
    return {**update, **changes}


def test_flower_replies_carry_unchanged_and_empty_replies_and_older_ones_still_parse():
    assert typed(_update(), ClientUpdate)["unchanged"] == 1
    old = _update()
    del old["unchanged"], old["empty_replies"]
    old["steps"] = [{k: v for k, v in old["steps"][0].items() if k != "empty_replies"} | {"outcome": "accepted"}]
    assert "unchanged" not in typed(old, ClientUpdate)
    with pytest.raises(ValueError, match=r"empty_replies\.task\.empty"):
        typed(_update(empty_replies={"task": {"calls": 3, "empty": "1"}}), ClientUpdate)
    result = {"client_id": "a", "correct": 2, "total": 4, "llm_calls": 4}
    assert typed(result, EvaluateResult) == result  # a site from before empty_replies
    assert typed(result | {"empty_replies": {"task": {"calls": 4, "empty": 0}}}, EvaluateResult)["empty_replies"]


# --- what the CLI and the report show ---------------------------------------------------------


def _payload() -> dict:
    record = {
        "round": 1, "clients": ["a", "b"], "validation_accuracy": 0.5, "prompt_chars": 1, "prompt_tokens": 1,
        "llm_calls": 3, "client_metrics": {"a": {"accepted": 0, "unchanged": 2}, "b": {"accepted": 1, "unchanged": 1}},
        "client_validation": {"a": {"correct": 3, "total": 4, "accuracy": 0.75}, "b": {"correct": 1, "total": 4, "accuracy": 0.25}},
        "empty_replies": {"a": {"task": {"calls": 30, "empty": 7}}},
    }  # fmt: skip
    return {
        "run_id": "r", "status": "completed", "history": [record], "simulated": False, "models": {"task": "m"}, "test_accuracy": 0.5,
        "stop_reason": "max_rounds", "best_round": 1, "best_validation_accuracy": 0.5,
        "client_test": {"a": {"correct": 1, "total": 2, "accuracy": 0.5}, "b": {"correct": 0, "total": 0, "accuracy": None}},
    }  # fmt: skip


def test_summary_shows_unchanged_steps_client_scores_and_empty_replies(monkeypatch, tmp_path):
    console = Console(record=True, width=80, force_terminal=False)
    monkeypatch.setattr(view, "console", console)
    view.print_summary(_payload(), tmp_path)
    text = console.export_text()
    assert "round 1: a's task model returned 7 empty replies (of 30)" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "0.75 3/4" in rows["a"] and "0.50 1/2" in rows["a"]
    assert "0.25 1/4" in rows["b"] and "– 0/0" in rows["b"]
    assert max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if line.startswith("round  updates")).replace("val acc", "val_acc").split()
    assert rows["1"].split()[header.index("unch")] == "3"  # the unchanged column: 2 + 1


def test_live_view_counts_unchanged_steps(monkeypatch, tmp_path):
    from fedtextgrad_graph.config import parse_config
    from fedtextgrad_graph.runs import RunEvent

    console = Console(record=True, width=200, force_terminal=False)
    monkeypatch.setattr(view, "console", console)
    config = parse_config({"tasks": {"t": {"format": "bbh", "path": "x.json"}}, "federation": {"num_clients": 2}})
    with view.RunView(tmp_path, config) as live:
        step = {"client_id": "a", "round": 1, "step": 1, "outcome": "unchanged", "train_accuracy": 1.0, "updated_accuracy": None}
        live.event(RunEvent("local_step", step))
        done = {"client_id": "a", "round": 1, "accepted": 0, "rejected": 0, "malformed": 0, "blocked": 0, "redacted": 0, "unchanged": 1, "llm_calls": 4, "steps": [step]}
        live.event(RunEvent("client_finished", done))
        live.event(RunEvent("evaluated", {"validation_accuracy": 0.5, "dropped": {}, "client_validation": _payload()["history"][0]["client_validation"]}))
    text = console.export_text()
    assert "a step 1/2: unchanged (batch accuracy 1.00)" in text
    assert "0 accepted, 0 rejected, 0 malformed, 0 blocked, 1 unchanged" in text
    assert "validation by client: a 0.75 3/4, b 0.25 1/4" in text


def test_report_shows_unchanged_client_scores_and_empty_replies(tmp_path: Path):
    payload = _payload()
    record = payload["history"][0] | {
        "global_prompt": "p", "client_prompts": {"a": "pa", "b": "pb"}, "improved": True, "validation_correct": 4,
        "validation_total": 8,
    }  # fmt: skip
    for m in record["client_metrics"].values():
        m.update(task="t", steps=[])
    state = {
        "history": [record], "round": 1, "global_prompt": "p", "best_round": 1, "best_score": 0.5, "stop_reason": "max_rounds",
        "test_accuracy": 0.5, "client_test": payload["client_test"], "run_config": {"prompt": {"instruction": "p0"}},
    }  # fmt: skip
    page = write_report(state, tmp_path, run_id="r").html.read_text()
    assert "<th>unchanged</th>" in page
    assert "2 unchanged" in page and "1 unchanged" in page
    assert '<table id="client-scores">' in page and "<td>0.750 (3/4)</td>" in page and "<td>– (0/0)</td>" in page
    assert "round 1: a&#x27;s task model returned 7 empty replies (of 30)" in page


async def test_a_reviewed_edit_rescores_each_clients_counts(make_config, tmp_path):
    from fedtextgrad_graph.config import load_config as load

    from .test_review import EDITED, REVIEW, EditedPromptSolver, _continue, _pause, _url

    path = make_config(clients=2, rounds=1, extra=REVIEW + '\n[evaluation]\nmode = "federated"\n')
    path.write_text(path.read_text().replace('format = "bbh"', 'format = "bbh"\nmetric = "exact"'))
    data = path.parent / "counting.json"
    data.write_text(json.dumps({"examples": [{**ex, "target": "RIGHT"} for ex in json.loads(data.read_text())["examples"]]}))
    config, url = load(path), _url(tmp_path)
    models = {**SIMULATED, "task": EditedPromptSolver()}
    await _pause(config, url, models)
    state = await _continue(config, url, {"decision": "edit", "prompt": EDITED}, models)
    [record] = state["history"]
    assert record["validation_accuracy"] == 1.0
    assert {cid: s["accuracy"] for cid, s in record["client_validation"].items()} == {"client-1": 1.0, "client-2": 1.0}
    assert sum(s["total"] for s in record["client_validation"].values()) == record["validation_total"]


def _echo(system: str, user: str) -> str:
    """An optimizer that gives the prompt back as it was, and a feedback model that has ideas."""
    if "IMPROVED_VARIABLE" in system:
        prompt = re.search(r"<LM_SYSTEM_PROMPT>(.*?)</LM_SYSTEM_PROMPT>", user, flags=re.DOTALL)
        return f"<IMPROVED_VARIABLE>{prompt.group(1) if prompt else ''}</IMPROVED_VARIABLE>"
    return simulated_reply(system, user)


async def test_rounds_of_unchanged_steps_leave_the_prompt_unchanged_and_stop_the_run(make_config):
    path = make_config(clients=3, rounds=6, local_steps=2, extra="\n[evaluation]\ntest = false\n")
    path.write_text(path.read_text().replace("unchanged_rounds = 1000", "unchanged_rounds = 2"))
    echo = ScriptedChatModel(respond=_echo)
    state = await run_federated(load_config(path), run_id="u", models={**SIMULATED, "optimizer": echo})
    assert state["stop_reason"] == "prompt_unchanged" and len(state["history"]) == 2
    for record in state["history"]:
        assert all((m["accepted"], m["unchanged"]) == (0, 2) for m in record["client_metrics"].values())
        assert record["global_prompt"] == state["history"][0]["global_prompt"]
