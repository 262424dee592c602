"""A poisoning client over HTTP, through the command line: the server screens its uploads out
every round, and the run, its files, ``status`` and the report say so."""

from __future__ import annotations

from fedtextgrad_graph.models.simulated import simulated_reply

from ..poisoning import POISON, poisoning_reply
from .cli import cli, read_events, results
from .openai_server import OpenAICompatibleServer

# client-2's optimizer and task model have their own names, so the endpoint can tell them apart.
MODELS = """
[models]
model = "openai:honest"
base_url = "{base_url}"
retry_backoff_s = 0.05

[[federation.clients]]
id = "client-1"

[[federation.clients]]
id = "client-2"
models = {{ optimizer = {{ model = "openai:poisoner" }}, task = {{ model = "openai:blind" }} }}

[[federation.clients]]
id = "client-3"
"""


def reply(model: str, system: str, user: str) -> str:
    """The endpoint: the task model obeys the poison; client-2's optimizer appends it to every
    improved prompt, and client-2's own task model ignores its prompt (so its local check keeps
    every poisoned step)."""
    if model == "blind":
        return simulated_reply("", user)
    if model == "poisoner":
        return poisoning_reply(system, user)
    if POISON in system:
        return "Answer: 42"
    return simulated_reply(system, user)


def test_a_poisoning_client_is_screened_out_through_the_cli(make_config, tmp_path):
    with OpenAICompatibleServer(reply=reply) as server:
        config = make_config(clients=3, rounds=2, local_steps=2, strategy="concat", models=MODELS.format(base_url=server.base_url))
        done = cli("run", config, "--run-id", "poison", cwd=tmp_path)
        assert {r["model"] for r in server.requests} == {"honest", "poisoner", "blind"}
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "runs" / "poison"
    out = results(run_dir)
    assert out["status"] == "completed" and out["rounds"] == 2
    for record in out["history"]:
        assert POISON in record["client_prompts"]["client-2"]  # it did upload the poison
        assert record["screened_out"]["client-2"].startswith("validation: validation accuracy 0.00")
        assert set(record["screened_out"]) == {"client-2"}
        assert record["screen_scores"]["client-2"]["accuracy"] == 0.0
        assert record["llm_calls"] >= record["screen_llm_calls"] > 0
    prompts = [r["global_prompt"] for r in out["history"]] + [out["best_prompt"], out["latest_prompt"]]
    assert not any(POISON in p for p in prompts)
    assert POISON not in (run_dir / "best_prompt.txt").read_text()

    screened = [e for e in read_events(run_dir) if e["event"] == "screened"]
    assert [list(e["screened_out"]) for e in screened] == [["client-2"], ["client-2"]]
    assert "client-2 screened out: validation: validation accuracy 0.00" in done.stdout

    status = cli("status", "poison", cwd=tmp_path)
    assert status.returncode == 0
    assert "round 1: client-2 screened out (validation: " in status.stdout
    assert "round 2: client-2 screened out (validation: " in status.stdout

    report = cli("report", "poison", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (run_dir / "report" / "report.html").read_text()
    assert page.count('<div class="screened">screened out: client-2: validation: ') == 2
    assert page.count('<article class="screened-out">') == 2
