"""The upload guard through the command line, against a real OpenAI-compatible HTTP server whose
optimizer replies quote a training example and an e-mail address: nothing of either reaches the
run folder (results, best prompt, events, SQLite checkpoint), the report or the console."""

from __future__ import annotations

import pytest

from ..leaks import copying_reply, leaks
from .cli import cli, read_events, results
from .openai_server import OpenAICompatibleServer


@pytest.mark.parametrize("action", ["redact", "reject"])
def test_copied_examples_never_leave_the_client(make_config, tmp_path, action):
    config = make_config(clients=2, rounds=2, local_steps=2, strategy="concat", extra=f'\n[guard]\naction = "{action}"\n')
    copied: list[str] = []
    with OpenAICompatibleServer(reply=lambda model, system, user: copying_reply(copied, system, user)) as server:
        done = cli("run", config, "--model", "openai:local", "--base-url", server.base_url, "--run-id", "guard", cwd=tmp_path)
        report = cli("report", "guard", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report.returncode == 0, report.stdout + report.stderr
    assert copied, "no optimizer request quoted an example"

    run_dir = tmp_path / "runs" / "guard"
    files = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert {"results.json", "best_prompt.txt", "events.jsonl", "checkpoint.sqlite"} <= set(files)
    files["report.html"] = (run_dir / "report" / "report.html").read_bytes()
    files["console"] = (done.stdout + done.stderr).encode()
    for name, blob in files.items():
        assert leaks(blob, copied) == [], name

    out = results(run_dir)
    metrics = [m for r in out["history"] for m in r["client_metrics"].values()]
    assert len(metrics) == 4  # 2 rounds x 2 clients
    if action == "redact":
        assert all(m["redacted"] == 2 and m["blocked"] == 0 for m in metrics)
        assert "0 blocked; 2 redacted by the upload guard" in done.stdout
    else:
        assert all(m["blocked"] == 2 and m["redacted"] == 0 and m["accepted"] == 0 for m in metrics)
        assert "2 blocked; 0 redacted by the upload guard" in done.stdout
    steps = [e for e in read_events(run_dir) if e["event"] == "local_step"]
    assert len(steps) == 8
    assert all(s["guard_caught"] == {"verbatim": 1, "email": 1} for s in steps)
    assert "upload guard: 1 email, 1 verbatim" in done.stdout
    assert "<th>blocked</th><th>redacted</th>" in files["report.html"].decode()
