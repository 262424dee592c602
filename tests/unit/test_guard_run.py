"""The upload guard in a whole in-process run: an optimizer that quotes a training example and
an e-mail address in its improved prompt leaks nothing into the run's files or checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from fedtextgrad_graph import SimulatedChatModel, create_checkpointer, load_config, run_federated
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.config import DEFAULT_FORMAT_INSTRUCTION
from fedtextgrad_graph.report import write_report
from fedtextgrad_graph.runs import RunEvent, results_payload, write_run_files
from fedtextgrad_graph.text import compose_prompt

from ..conftest import ScriptedChatModel
from ..leaks import copying_reply, leaks


async def guarded_run(make_config, tmp_path: Path, guard: str) -> tuple[dict, Path, list[str]]:
    """A 2-client, 2-round run with the copying optimizer; writes the run folder like the CLI."""
    path = make_config(clients=2, rounds=2, local_steps=2, strategy="concat", extra=f"\n[guard]\n{guard}\n")
    config = load_config(path)
    copied: list[str] = []
    simulated = SimulatedChatModel()
    optimizer = ScriptedChatModel(respond=lambda system, user: copying_reply(copied, system, user))
    models = {"task": simulated, "optimizer": optimizer, "aggregator": simulated, "judge": simulated}
    run_dir = tmp_path / "runs" / "guarded"
    run_dir.mkdir(parents=True)
    with (run_dir / "events.jsonl").open("w", encoding="utf-8") as events:

        def on_event(event: RunEvent) -> None:
            events.write(event.to_json() + "\n")

        async with create_checkpointer(sqlite_url(run_dir / "checkpoint.sqlite")) as checkpointer:
            state = await run_federated(config, run_id="guarded", checkpointer=checkpointer, models=models, on_event=on_event)
    write_run_files(run_dir, results_payload(state, run_id="guarded"))
    assert copied, "the optimizer never ran"
    return state, run_dir, copied


def run_files(run_dir: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert {"results.json", "best_prompt.txt", "events.jsonl", "checkpoint.sqlite"} <= set(files)
    return files


async def test_without_the_guard_the_example_leaks_everywhere(make_config, tmp_path):
    """The control: the leak detector below finds the copied text when nothing removes it."""
    state, run_dir, copied = await guarded_run(make_config, tmp_path, "enabled = false")
    files = run_files(run_dir)
    assert leaks(files["checkpoint.sqlite"], copied)
    assert leaks(files["results.json"], copied)
    assert any(leaks(r["global_prompt"].encode(), copied) for r in state["history"])


async def test_redact_keeps_the_steps_and_leaks_nothing(make_config, tmp_path):
    state, run_dir, copied = await guarded_run(make_config, tmp_path, 'action = "redact"')
    for name, blob in run_files(run_dir).items():
        assert leaks(blob, copied) == [], name
    for record in state["history"]:
        assert leaks(record["global_prompt"].encode(), copied) == []
        for cid, metrics in record["client_metrics"].items():
            assert leaks(record["client_prompts"][cid].encode(), copied) == []
            assert metrics["redacted"] == 2 and metrics["blocked"] == 0  # both local steps were redacted
            for step in metrics["steps"]:
                assert step["redacted"] and step["guard_caught"] == {"verbatim": 1, "email": 1}
                assert step["outcome"] in ("accepted", "rejected")
    assert "For example:" in state["history"][0]["global_prompt"]  # the rest of the improved prompt was kept
    results = json.loads((run_dir / "results.json").read_text())
    assert results["history"][-1]["client_metrics"]["client-1"]["redacted"] == 2
    page = write_report(state, tmp_path / "report", run_id="guarded").html.read_text()
    for record in state["history"]:  # per round: 0 blocked, 4 redacted steps, then the prompt's length
        assert f"<td>0</td><td>4</td><td>{record['prompt_chars']}</td>" in page
    assert leaks(page, copied) == []


async def test_reject_blocks_the_steps_and_counts_them(make_config, tmp_path):
    state, run_dir, copied = await guarded_run(make_config, tmp_path, 'action = "reject"')
    for name, blob in run_files(run_dir).items():
        assert leaks(blob, copied) == [], name
    initial = compose_prompt("You will answer a reasoning question. Think step by step.", DEFAULT_FORMAT_INSTRUCTION)
    for record in state["history"]:
        assert record["global_prompt"] == initial  # every improvement was refused
        for metrics in record["client_metrics"].values():
            assert (metrics["blocked"], metrics["redacted"], metrics["accepted"]) == (2, 0, 0)
            assert [s["outcome"] for s in metrics["steps"]] == ["blocked", "blocked"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["event"] == "local_step"]
    assert len(steps) == 8 and {e["outcome"] for e in steps} == {"blocked"}
    finished = [e for e in events if e["event"] == "client_finished"]
    assert len(finished) == 4 and all(e["blocked"] == 2 for e in finished)

