"""Token counts against a real OpenAI-compatible HTTP server: the run's totals are exactly the
usage the server reported, summed over every reply it sent."""

from __future__ import annotations

from ..conftest import write_bbh
from .cli import cli, read_events, results
from .openai_server import OpenAICompatibleServer

CONFIG = """
[run]
name = "tokens"
seed = 0
max_concurrency = 8

[tasks.apples]
format = "bbh"
path = "apples.json"
split = { train = [0, 20], validation = [20, 26], test = [26, 32] }

[tasks.plums]
format = "bbh"
path = "plums.json"
split = { train = [0, 20], validation = [20, 26], test = [26, 32] }

[federation]
partition = "heterogeneous"
clients = [{ id = "a1", task = "apples" }, { id = "p1", task = "plums" }]

[client]
local_steps = 2
batch_size = 2

[aggregation]
strategy = "summarize"

[evaluation]
mode = "federated"

[convergence]
max_rounds = 2
unchanged_rounds = 1000
"""


def _usage(model: str, system: str, user: str, reply: str) -> tuple[int, int]:
    """Numbers that differ from request to request: characters sent, and words replied."""
    return len(system) + len(user), len(reply.split()) + 1


def test_the_run_totals_are_the_usage_the_server_reported(tmp_path):
    write_bbh(tmp_path / "apples.json", 32, seed=1)
    write_bbh(tmp_path / "plums.json", 32, seed=2)
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    with OpenAICompatibleServer(usage=_usage) as server:
        done = cli("run", "config.toml", "--model", "openai:local", "--base-url", server.base_url, "--run-id", "t", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    sent = [r["usage"] for r in server.requests]
    expected = {
        "input": sum(u["prompt_tokens"] for u in sent),
        "output": sum(u["completion_tokens"] for u in sent),
        "calls_without_usage": 0,
    }
    out = results(tmp_path / "runs" / "t")
    assert out["llm_tokens"] == expected
    calls = [e for e in read_events(tmp_path / "runs" / "t") if e["event"] == "llm_call"]
    assert len(calls) == len(sent)
    for record in out["history"]:  # each round: the replies to its own calls
        mine = [e for e in calls if e["round"] == record["round"]]
        assert record["llm_tokens"]["input"] == sum(e["input_tokens"] for e in mine) > 0
        assert record["llm_tokens"]["output"] == sum(e["output_tokens"] for e in mine) > 0
    by_call: dict[tuple[object, str, str], list[int]] = {}  # (round, caller, role) -> calls, in, out
    for e in calls:
        n = by_call.setdefault((e["round"], e["client_id"] or "server", e["role"]), [0, 0, 0])
        n[0], n[1], n[2] = n[0] + 1, n[1] + e["input_tokens"], n[2] + e["output_tokens"]
    for record in out["history"]:  # by caller and role: each client's training and scoring, the server's calls
        recorded = {(record["round"], caller, role): [n["calls"], n["input"], n["output"]] for caller, roles in record["llm_usage"].items() for role, n in roles.items()}
        assert recorded == {k: v for k, v in by_call.items() if k[0] == record["round"]}
        assert {"a1", "p1", "server"} <= {caller for _, caller, _ in recorded}
    run_usage = out["llm_usage"]  # rounds, baseline and final test, by caller and role
    assert sum(n["input"] for roles in run_usage.values() for n in roles.values()) == expected["input"]
    assert sum(n["output"] for roles in run_usage.values() for n in roles.values()) == expected["output"]
    assert sum(n["calls"] for roles in run_usage.values() for n in roles.values()) == len(sent) == out["llm_calls"]
    assert out["cost_usd"] is None  # no [pricing]: tokens only
    assert set(out["test_by_task"]) == set(out["history"][-1]["validation_by_task"]) == {"apples", "plums"}
    status = cli("status", "t", cwd=tmp_path)
    assert f"{expected['input']} in, {expected['output']} out" in status.stdout
    assert "validation by task" in status.stdout and "local steps and LLM tokens by round" in status.stdout
    assert "LLM usage" in status.stdout and "role optimizer" in status.stdout
