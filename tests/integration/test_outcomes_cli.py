"""A run against a real OpenAI-compatible server whose task model says nothing and whose
optimizer echoes the prompt: the run completes and every place shows the counts."""

from __future__ import annotations

import re

from fedtextgrad_graph.models.simulated import simulated_reply

from .cli import cli, read_events, results
from .openai_server import OpenAICompatibleServer

MODELS = """
[models]
model = "local-llm"
base_url = "{base_url}"
retry_backoff_s = 0.05

[models.task]
model = "silent-llm"

[models.optimizer]
model = "echo-llm"

[evaluation]
test = false
"""


def _reply(model: str, system: str, user: str) -> str:
    if model == "silent-llm":
        return ""
    if "IMPROVED_VARIABLE" in system:  # the optimizer's step: hand the prompt back as it was
        # The whole prompt is in the gradients' context (<VARIABLE> holds a shortened one).
        prompt = re.search(r"<LM_SYSTEM_PROMPT>(.*?)</LM_SYSTEM_PROMPT>", user, flags=re.DOTALL)
        return f"<IMPROVED_VARIABLE>{prompt.group(1) if prompt else ''}</IMPROVED_VARIABLE>"
    return simulated_reply(system, user)


def test_empty_task_replies_and_an_echoing_optimizer_are_counted(make_config, tmp_path):
    with OpenAICompatibleServer(reply=_reply) as server:
        config = make_config(clients=2, rounds=2, local_steps=2, models=MODELS.format(base_url=server.base_url))
        done = cli("run", config, "--run-id", "quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "runs" / "quiet"
    out = results(run_dir)
    assert out["status"] == "completed"
    for record in out["history"]:
        steps = [m for m in record["client_metrics"].values()]
        assert [(m["accepted"], m["unchanged"]) for m in steps] == [(0, 2), (0, 2)]
        by_caller = record["empty_replies"]
        assert set(by_caller) == {"client-1", "client-2", "server"}
        assert all(n["task"]["empty"] == n["task"]["calls"] > 0 for n in by_caller.values())
        assert all(set(n) == {"task"} for n in by_caller.values())  # the feedback model answered
    # Each empty reply was asked for twice: one retry, one call in the counts.
    task_requests = sum(1 for r in server.requests if r["model"] == "silent-llm")
    counted = sum(n["task"]["calls"] for r in out["history"] for n in r["empty_replies"].values())
    baseline_calls = sum(1 for e in read_events(run_dir) if e["event"] == "llm_call" and e["round"] == 0)
    assert task_requests == 2 * (counted + baseline_calls)
    # One warning per caller and role per round, not one per call.
    warnings = [line for line in done.stderr.splitlines() if "empty replies" in line]
    assert len(warnings) == len(set(warnings)) == 2 * 3, done.stderr
    n = out["history"][1]["empty_replies"]["client-1"]["task"]
    assert f"warning: round 2: client-1's task model returned {n['empty']} empty replies (of {n['calls']})" in warnings

    status = cli("status", "quiet", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"round 2: client-1's task model returned {n['empty']} empty replies (of {n['calls']})" in status.stdout

    report = cli("report", "quiet", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = next(tmp_path.rglob("report.html")).read_text()
    assert "<th>unchanged</th>" in page and "2 unchanged" in page
    assert "round 2: client-1&#x27;s task model returned" in page
