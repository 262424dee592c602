"""The ``logprobs`` surprisal estimator against a real OpenAI-compatible HTTP server on loopback:
prompt-token logprobs from ``/v1/completions`` (echo), and a warning plus ``compression`` when the
server returns none."""

from __future__ import annotations

import math
import re
from pathlib import Path

from fedtextgrad_graph.aggregation import split_units
from fedtextgrad_graph.config import DEFAULT_FORMAT_INSTRUCTION
from fedtextgrad_graph.text import strip_format

from .cli import cli, results
from .openai_server import OpenAICompatibleServer, _token_logprob


def _config(make_config, tmp_path: Path) -> Path:
    path = make_config(clients=2, rounds=1, local_steps=2, extra="\n[models]\nretry_backoff_s = 0.05\n")
    path.write_text(path.read_text().replace('strategy = "uid"', 'strategy = "uid"\nsurprisal = "logprobs"'))
    return path


def _expected(body: str) -> list[float]:
    """Bits per word of each sentence under the server's token logprobs (its first token has none)."""
    sentences = split_units(body)
    text = " ".join(sentences)
    starts = [sum(len(s) + 1 for s in sentences[:i]) for i in range(len(sentences))]
    nats = [0.0] * len(sentences)
    for k, token in enumerate(re.finditer(r"\s*\S+", text)):
        if k:
            nats[max(i for i, start in enumerate(starts) if start <= token.start())] -= _token_logprob("local-llama", token.group())
    return [round(n / math.log(2) / len(re.findall(r"\w+", s)), 4) for n, s in zip(nats, sentences, strict=True)]


def test_logprobs_surprisal_comes_from_the_completions_endpoint(make_config, tmp_path):
    config = _config(make_config, tmp_path)
    with OpenAICompatibleServer() as server:
        done = cli("run", config, "--model", "openai:local-llama", "--base-url", server.base_url, "--run-id", "lp", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    record = results(tmp_path / "runs" / "lp")["history"][0]
    merge = record["merge"]
    assert merge["estimator"] == "logprobs" and merge["surprisal"]["unit"] == "bits/word"
    body = strip_format(record["global_prompt"], DEFAULT_FORMAT_INSTRUCTION)
    assert merge["surprisal"]["sentences"] == _expected(body)
    scored = [r for r in server.requests if "prompt" in r]
    assert scored and all(r["echo"] is True and r["logprobs"] == 0 and r["max_tokens"] == 0 and r["model"] == "local-llama" for r in scored)
    assert " ".join(split_units(body)) in {r["prompt"] for r in scored}


def test_a_server_without_prompt_logprobs_warns_and_uses_compression(make_config, tmp_path):
    config = _config(make_config, tmp_path)
    with OpenAICompatibleServer(token_logprob=None) as server:
        done = cli("run", config, "--model", "openai:local-llama", "--base-url", server.base_url, "--run-id", "nolp", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: surprisal estimator 'logprobs' unavailable (the endpoint's /completions reply has no prompt logprobs" in done.stderr
    merge = results(tmp_path / "runs" / "nolp")["history"][0]["merge"]
    assert merge["estimator"] == "compression" and len(merge["surprisal"]["sentences"]) >= 1
