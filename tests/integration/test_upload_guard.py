"""The upload guard through the command line, against a real OpenAI-compatible HTTP server whose
optimizer replies quote a training example and an e-mail address: nothing of either reaches the
run folder (results, best prompt, events, SQLite checkpoint), the report or the console; with
Flower, each site's own guard acts on the site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..leaks import copying_reply, leaks
from .cli import cli, read_events, results
from .flower_sites import Federation, write_server, write_site
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
        assert "0 blocked, 0 unchanged; 2 redacted by the upload guard" in done.stdout
    else:
        assert all(m["blocked"] == 2 and m["redacted"] == 0 and m["accepted"] == 0 for m in metrics)
        assert "2 blocked, 0 unchanged; 0 redacted by the upload guard" in done.stdout
    steps = [e for e in read_events(run_dir) if e["event"] == "local_step"]
    assert len(steps) == 8
    assert all(s["guard_caught"] == {"verbatim": 1, "email": 1} for s in steps)
    assert "upload guard: 1 email, 1 verbatim" in done.stdout
    assert "<th>blocked</th><th>unchanged</th><th>redacted</th>" in files["report.html"].decode()


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    federation = Federation(tmp_path)
    yield federation
    federation.stop()


def test_each_flower_site_applies_its_own_guard(federation, tmp_path):
    """The guard runs on the site, with the site's settings: the server's config turns it off,
    yet site-a blocks and site-b redacts, and no copy reaches the server or the site's files."""
    copied: list[str] = []
    with OpenAICompatibleServer(reply=lambda model, system, user: copying_reply(copied, system, user)) as endpoint:
        federation.start_superlink("--insecure")
        sites = {cid: write_site(tmp_path / cid, cid, endpoint.base_url, seed=11 + i) for i, cid in enumerate(("site-a", "site-b"))}
        for cid, action in (("site-a", "reject"), ("site-b", "redact")):
            with sites[cid].open("a", encoding="utf-8") as toml:
                toml.write(f'\n[guard]\naction = "{action}"\n')
        federation.start_sites(list(sites.values()), "--insecure")
        server_dir = tmp_path / "server"
        config = write_server(server_dir, list(sites), rounds=1)
        config.write_text(config.read_text() + "\n[guard]\nenabled = false\n")
        done = cli(
            "run", config, "--superlink", federation.address, "--insecure", "--server-secret", federation.server_secret,
            "--run-id", "fl-guard", cwd=server_dir, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert copied, "no optimizer request quoted an example"

    [record] = results(server_dir / "runs" / "fl-guard")["history"]
    a, b = record["client_metrics"]["site-a"], record["client_metrics"]["site-b"]
    assert (a["blocked"], a["redacted"], [s["outcome"] for s in a["steps"]]) == (1, 0, ["blocked"])
    assert (b["blocked"], b["redacted"], b["steps"][0]["guard_caught"]) == (0, 1, {"verbatim": 1, "email": 1})
    assert "For example:" in record["client_prompts"]["site-b"]  # redacted, not dropped

    server_files = [p for p in (server_dir / "runs" / "fl-guard").rglob("*") if p.is_file()]
    site_files = [p for site in sites.values() for p in site.parent.rglob("*") if p.is_file() and p.name != "data.json"]
    assert any(p.name == "checkpoint.sqlite" for p in server_files) and any(p.parent.name == "results" for p in site_files)
    for path in server_files + site_files:
        assert leaks(path.read_bytes(), copied) == [], path
    assert leaks(done.stdout + done.stderr, copied) == []
