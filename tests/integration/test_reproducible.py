"""The same config and seed against a deterministic endpoint give the same results.json."""

from __future__ import annotations

import hashlib
import re

from fedtextgrad_graph.config import DEFAULT_FORMAT_INSTRUCTION
from fedtextgrad_graph.models.simulated import simulated_reply

from .cli import cli
from .openai_server import OpenAICompatibleServer

_IMPROVED = re.compile(r"<IMPROVED_VARIABLE>(.*?)</IMPROVED_VARIABLE>", re.DOTALL)


def order_sensitive_reply(model: str, system: str, user: str) -> str:
    """The simulated model's reply, except that an improved prompt carries a digest of the
    whole optimizer request: feedback listed in another order gives another prompt."""
    reply = simulated_reply(system, user)
    match = _IMPROVED.search(reply)
    if "IMPROVED_VARIABLE" not in system or match is None:
        return reply
    revision = f"Revision {hashlib.sha256(user.encode()).hexdigest()[:8]}."
    prompt = match.group(1)
    if prompt.endswith(DEFAULT_FORMAT_INSTRUCTION):
        prompt = f"{prompt[: -len(DEFAULT_FORMAT_INSTRUCTION)]}{revision} {DEFAULT_FORMAT_INSTRUCTION}"
    else:
        prompt = f"{prompt} {revision}"
    return f"<IMPROVED_VARIABLE>{prompt}</IMPROVED_VARIABLE>"


def test_same_config_and_seed_give_identical_results(make_config, tmp_path):
    config = make_config(clients=2, rounds=2, local_steps=2, strategy="concat")
    config.write_text(config.read_text().replace("batch_size = 3", 'batch_size = 4\nproximal = "off"'))
    outputs = []
    with OpenAICompatibleServer(reply=order_sensitive_reply) as server:
        for run_id in ("first", "second"):
            done = cli("run", config, "--model", "openai:local", "--base-url", server.base_url, "--run-id", run_id, cwd=tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
            text = (tmp_path / "runs" / run_id / "results.json").read_text(encoding="utf-8")
            outputs.append(text.replace(f'"run_id": "{run_id}"', '"run_id": "RUN"'))
    first, second = outputs
    assert "Revision " in first  # the optimizer's requests reached the prompts
    assert first == second
