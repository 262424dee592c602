"""Runs against a misbehaving OpenAI-compatible endpoint: replies that are not JSON, dropped
connections, hangs, 429 with Retry-After, and an outage of 30 s. (A hang is tested on one
call: in a whole run on a busy machine, a short timeout also cuts slow normal replies.)"""

from __future__ import annotations

from collections import Counter

from fedtextgrad_graph.config import ModelSpec
from fedtextgrad_graph.models import LLMGateway, RetryPolicy, create_chat_model

from .cli import cli, read_events, results
from .openai_server import OpenAICompatibleServer


def llm_calls(run_dir) -> list[dict]:
    return [e for e in read_events(run_dir) if e["event"] == "llm_call"]


def test_a_run_rides_out_invalid_json_drops_and_rate_limits(make_config, tmp_path):
    config = make_config(clients=2, rounds=1, local_steps=1, extra="\n[models]\nretry_backoff_s = 0.05\n")
    faults = ["invalid_json", "drop", "rate_limit", "invalid_json"]
    with OpenAICompatibleServer(faults=faults, retry_after_s=0.2) as server:
        done = cli("run", config, "--model", "openai:local", "--base-url", server.base_url, "--run-id", "faults", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert results(tmp_path / "runs" / "faults")["status"] == "completed"
    assert [fault for _, fault in server.faults_served] == faults
    calls = llm_calls(tmp_path / "runs" / "faults")
    assert all(call["ok"] for call in calls) and len(calls) == len(server.requests)
    kinds = Counter(kind for call in calls for kind in call["errors"])
    assert kinds == {"invalid_json": 2, "OpenAIConnectionError": 1, "http_429": 1}
    assert sum(call["attempts"] - 1 for call in calls) == len(faults)  # each fault cost one retry
    assert "Unterminated" not in done.stdout + done.stderr


async def test_retry_after_is_honoured_before_the_next_request():
    with OpenAICompatibleServer(faults=["rate_limit"], retry_after_s=2) as server:
        model = create_chat_model(ModelSpec(model="openai:local", base_url=server.base_url), timeout_s=10)
        records = []
        gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(backoff_s=0.01), on_call=records.append)
        assert await gateway.generate(model, "sys", "hi", role="task")
    [(limited_at, fault)] = server.faults_served
    [answered] = server.requests
    assert fault == "rate_limit" and answered["received_at"] - limited_at >= 2
    assert records[0].errors == ("http_429",) and records[0].retry_wait_s >= 2


async def test_a_hang_beyond_the_timeout_is_retried_over_http():
    with OpenAICompatibleServer(faults=["hang"], hang_s=3) as server:
        model = create_chat_model(ModelSpec(model="openai:local", base_url=server.base_url), timeout_s=0.5)
        records = []
        gateway = LLMGateway(max_concurrency=1, retry=RetryPolicy(backoff_s=0.01), timeout_s=0.5, on_call=records.append)
        assert await gateway.generate(model, "sys", "hi", role="task")
    assert len(server.requests) == 1 and records[0].attempts == 2
    assert records[0].errors[0] in {"OpenAITimeoutError", "TimeoutError"}


def test_the_default_retry_budget_rides_out_a_30_second_outage(make_config, tmp_path):
    config = make_config(clients=2, rounds=1, local_steps=1)  # default [models] retry settings
    with OpenAICompatibleServer() as server:
        server.outage(30)
        done = cli("run", config, "--model", "openai:local", "--base-url", server.base_url, "--run-id", "outage", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert results(tmp_path / "runs" / "outage")["status"] == "completed"
    outage = [at for at, fault in server.faults_served if fault == 503]
    assert outage and max(outage) - min(outage) >= 20  # calls kept retrying (gaps <= 10 s) through the outage
    assert min(r["received_at"] for r in server.requests) > max(outage)
    calls = llm_calls(tmp_path / "runs" / "outage")
    assert max(call["retry_wait_s"] for call in calls) >= 20 and all(call["ok"] for call in calls)
