"""A full run against a real OpenAI-compatible HTTP server on loopback (as vLLM or Ollama would be)."""

from __future__ import annotations

from .cli import cli, read_events, results
from .openai_server import OpenAICompatibleServer


def test_run_through_an_openai_compatible_endpoint(make_config, tmp_path):
    config = make_config(clients=2, rounds=1, local_steps=1, extra="\n[models]\nretry_backoff_s = 0.05\n")
    with OpenAICompatibleServer(fail_first=2) as server:
        done = cli("run", config, "--model", "openai:local-llama", "--base-url", server.base_url, "--run-id", "http", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = results(tmp_path / "runs" / "http")
    assert out["status"] == "completed" and out["simulated"] is False
    assert out["models"]["task"] == "openai:local-llama"
    calls = [e for e in read_events(tmp_path / "runs" / "http") if e["event"] == "llm_call"]
    assert len(calls) == len(server.requests) > 0  # every LLM call went over HTTP, once
    assert sum(e["attempts"] - 1 for e in calls) == 2  # the two 503s were retried
    assert {r["model"] for r in server.requests} == {"local-llama"}
    assert all(r["authorization"] == "Bearer not-needed" for r in server.requests)
