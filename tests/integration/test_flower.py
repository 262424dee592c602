"""Federated runs over a real Flower deployment: a SuperLink and SuperNode sites started on
free loopback ports by the package's own commands, each site with its data in a folder of
its own, against a local OpenAI-compatible test server. Nothing here is skipped in CI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import counting_examples, wait_for
from .cli import cli, cli_env, read_events, results
from .flower_sites import Federation, Process, make_node_key, make_tls, site_calls, write_server, write_site
from .openai_server import OpenAICompatibleServer
from .redis_server import free_port

SITES = ("site-a", "site-b", "site-c")


@pytest.fixture
def endpoint() -> Iterator[OpenAICompatibleServer]:
    """The sites' model: the simulated script over HTTP; ``slow-model`` answers after 1 s."""
    with OpenAICompatibleServer(latency_s={"slow-model": 1.0}) as server:
        yield server


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    federation = Federation(tmp_path)
    yield federation
    federation.stop()


def _sites(root: Path, base_url: str, slow: str | None = None) -> dict[str, Path]:
    """A folder per site, each with its own data (different examples) and site.toml."""
    return {
        cid: write_site(root / cid, cid, base_url, seed=11 + i, model="openai:slow-model" if cid == slow else "openai:site-model")
        for i, cid in enumerate(SITES)
    }


def _private_texts(sites: dict[str, Path]) -> list[str]:
    return [ex["input"] for seed in range(11, 11 + len(sites)) for ex in counting_examples(24, seed)]


def _stored_text(run_dir: Path) -> bytes:
    """Everything the server keeps about a run: checkpoint blobs and run files."""
    with sqlite3.connect(run_dir / "checkpoint.sqlite") as conn:
        blobs = b"".join(
            bytes(value)
            for table, column in (("checkpoints", "checkpoint"), ("writes", "value"))
            for (value,) in conn.execute(f"SELECT {column} FROM {table}")
            if value is not None
        )
    files = b"".join(p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.suffix in (".json", ".jsonl", ".txt"))
    return blobs + files


def test_two_rounds_over_flower_with_every_site_in_every_round(federation, endpoint, tmp_path):
    federation.start_superlink("--insecure")
    sites = _sites(tmp_path, endpoint.base_url)
    federation.start_sites(list(sites.values()), "--insecure")
    server_dir = tmp_path / "server"
    config = write_server(server_dir, SITES, rounds=2)
    # The sites' model only (the server's config names another): $1 a token.
    config.write_text(config.read_text() + '\n[pricing."openai:site-model"]\ninput_per_million = 1e6\noutput_per_million = 1e6\n')

    done = cli("run", config, "--superlink", federation.address, "--insecure", "--server-secret", federation.server_secret, "--run-id", "fl", cwd=server_dir, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = results(server_dir / "runs" / "fl")
    assert out["status"] == "completed" and [r["round"] for r in out["history"]] == [1, 2]
    for record in out["history"]:
        assert sorted(record["client_prompts"]) == list(SITES) and record["dropped"] == {}
        assert record["validation_total"] == 3 * 6  # each site scored its own 6 validation examples
        assert record["models"]["task"] == "openai:site-model"  # what the sites really used
        scores = record["client_validation"]  # each site's own counts, summing to the pooled ones
        assert sorted(scores) == list(SITES) and all(s["total"] == 6 for s in scores.values())
        assert sum(s["correct"] for s in scores.values()) == record["validation_correct"]
        assert all("unchanged" in m and "task" in m["steps"][0]["empty_replies"] for m in record["client_metrics"].values())
    assert out["test_accuracy"] is not None
    tests = out["client_test"]  # the sites hold the test data: each scored its own
    assert sorted(tests) == list(SITES)
    assert sum(s["correct"] for s in tests.values()) / sum(s["total"] for s in tests.values()) == out["test_accuracy"]
    # Every LLM call was a site's (the server merges by concatenation and holds no data), and
    # the endpoint's replies each report 1 input and 1 output token: the sites' counts crossed.
    answered = len(endpoint.requests)
    assert out["llm_tokens"] == {"input": answered, "output": answered, "calls_without_usage": 0}
    # Each call priced with the model its site reported (scoring included), none with the server's.
    assert out["cost_usd"] == pytest.approx(2.0 * answered)
    test_calls = sum(n["calls"] for roles in out["test_llm_usage"].values() for n in roles.values())
    assert test_calls > 0 and out["test_cost_usd"] == pytest.approx(2.0 * test_calls)

    # The server was never given a site's data, and none of it reached what the server stores.
    assert "data.json" not in config.read_text()
    stored = _stored_text(server_dir / "runs" / "fl")
    assert out["history"][-1]["global_prompt"].encode() in stored  # the search finds what is there
    for text in _private_texts(sites):
        assert text.encode() not in stored
    for cid, site_toml in sites.items():
        assert site_calls(site_toml.parent, "fl"), f"{cid} made no LLM call of its own"

    status = cli("status", "fl", cwd=server_dir)
    assert status.returncode == 0 and "3/3" in status.stdout
    report = cli("report", "fl", cwd=server_dir)
    assert report.returncode == 0, report.stderr
    page = (server_dir / "runs" / "fl" / "report" / "report.html").read_text()
    assert all(cid in page for cid in SITES)


def test_a_site_killed_mid_round_is_dropped_and_rejoins_when_restarted(federation, endpoint, tmp_path):
    federation.start_superlink("--insecure")
    sites = _sites(tmp_path, endpoint.base_url, slow="site-c")
    processes = dict(zip(sites, federation.start_sites(list(sites.values()), "--insecure"), strict=True))
    server_dir = tmp_path / "server"
    config = write_server(server_dir, SITES, rounds=3, deadline_s=20)
    run = Process(
        ["run", config, "--superlink", federation.address, "--insecure", "--server-secret", federation.server_secret, "--run-id", "kill-site"],
        cwd=server_dir,
        log=server_dir / "run.out",
    )
    federation.processes.append(run)
    site_c = sites["site-c"].parent
    wait_for(lambda: any(e["request"] == "train" for e in site_calls(site_c, "kill-site")), 120, "site-c to start training")
    processes["site-c"].kill()  # SIGKILL, mid-round 1
    federation.start_site(sites["site-c"], "--insecure")  # the same site, restarted: a new SuperNode

    run.popen.wait(400)
    assert run.popen.returncode == 0, run.output()
    out = results(server_dir / "runs" / "kill-site")
    first, *_, last = out["history"]
    assert sorted(first["client_prompts"]) == ["site-a", "site-b"]
    assert first["dropped"] == {"site-c": "missed the deadline (20 s)"}
    assert "site-c dropped this round: missed the deadline (20 s)" in run.output()
    # Back on a new node, it takes part again (from the round after it reconnected).
    assert sorted(last["client_prompts"]) == list(SITES) and last["dropped"] == {}


def test_the_server_killed_mid_round_resumes_without_repeating_site_calls(federation, endpoint, tmp_path):
    federation.start_superlink("--insecure")
    sites = _sites(tmp_path, endpoint.base_url, slow="site-c")
    federation.start_sites(list(sites.values()), "--insecure")
    server_dir = tmp_path / "server"
    config = write_server(server_dir, SITES, rounds=2)
    run_dir = server_dir / "runs" / "kill-server"
    run = Process(
        ["run", config, "--superlink", federation.address, "--insecure", "--server-secret", federation.server_secret, "--run-id", "kill-server"],
        cwd=server_dir,
        log=server_dir / "run.out",
    )
    federation.processes.append(run)

    def finished() -> set[str]:
        return {e["client_id"] for e in read_events(run_dir) if e["event"] == "client_finished" and e["round"] == 2}

    wait_for(lambda: {"site-a", "site-b"} <= finished(), 180, "sites a and b to upload round 2")
    run.kill()
    assert "site-c" not in finished(), "site-c finished before the kill: the test lost its window"

    resumed = cli("resume", "kill-server", cwd=server_dir, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    out = results(run_dir)
    assert out["status"] == "completed" and [r["round"] for r in out["history"]] == [1, 2]
    for cid, site_toml in sites.items():
        calls = site_calls(site_toml.parent, "kill-server")
        trained = Counter(e["round"] for e in calls if e["request"] == "train")
        validated = Counter(e["round"] for e in calls if e["request"] == "validation")
        for record in out["history"]:
            # Each round's training was paid exactly once (the resumed server got finished
            # work back from the site), and so was each validation.
            assert trained[record["round"]] == record["client_metrics"][cid]["llm_calls"], (cid, record["round"], trained)
            assert validated[record["round"]] == 6, (cid, validated)
    # site-c finished round 2 after the server died, and handed that update to the resumed one.
    assert "round 2: sent the update it had finished before" in (sites["site-c"].parent / "site.out").read_text()


def test_tls_and_node_auth_refuse_an_unregistered_site(federation, endpoint, tmp_path):
    tls = make_tls(tmp_path / "tls")
    registered_key, registered_pub = make_node_key(tmp_path / "keys", "site-a")
    stranger_key, _ = make_node_key(tmp_path / "keys", "site-b")
    federation.start_superlink(
        "--ssl-certfile", tls.certfile, "--ssl-keyfile", tls.keyfile, "--ssl-ca-certfile", tls.ca_certfile,
        "--node-auth", "--site-key", f"site-a={registered_pub}",
    )  # fmt: skip
    assert "registered site site-a" in federation.link.output()
    sites = _sites(tmp_path, endpoint.base_url)
    federation.start_site(sites["site-a"], "--root-certificates", tls.ca_certfile, "--auth-key", registered_key)
    stranger = federation.start_site(sites["site-b"], "--root-certificates", tls.ca_certfile, "--auth-key", stranger_key, connect=False)
    stranger.popen.wait(90)
    assert stranger.popen.returncode == 1 and "the SuperLink refused this site" in stranger.output()

    server_dir = tmp_path / "server"
    config = write_server(server_dir, ["site-a"], rounds=1)
    plain = cli("run", config, "--superlink", federation.address, "--insecure", "--run-id", "plain", cwd=server_dir)
    assert plain.returncode == 2 and "pass --root-certificates" in plain.stderr
    # Only the holder of the SuperLink's server secret runs rounds: a site could reach the port too.
    rogue = cli("run", config, "--superlink", federation.address, "--root-certificates", tls.ca_certfile, "--run-id", "rogue", cwd=server_dir)
    assert rogue.returncode == 2 and "pass --server-secret" in rogue.stderr, rogue.stderr
    done = cli(
        "run", config, "--superlink", federation.address, "--root-certificates", tls.ca_certfile,
        "--server-secret", federation.server_secret, "--run-id", "tls", cwd=server_dir, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(results(server_dir / "runs" / "tls")["history"][0]["client_prompts"]) == ["site-a"]


def test_the_flower_native_app_runs_under_flwr_run(federation, endpoint, tmp_path):
    """A team's own Flower deployment: Flower's SuperLink launches the ServerApp of
    integrations/flower, submitted with ``flwr run``; the sites are the same."""
    flwr_home = tmp_path / "flwr-home"
    flwr_home.mkdir()
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "{federation.address}"\ninsecure = true\n'
    )
    federation.start_flower_superlink(flwr_home)
    sites = _sites(tmp_path, endpoint.base_url)
    federation.start_sites([sites["site-a"], sites["site-b"]], "--insecure")
    server_dir = tmp_path / "server"
    config = write_server(server_dir, ["site-a", "site-b"], rounds=1)
    app = Path(__file__).resolve().parents[2] / "integrations" / "flower"

    def flwr_run(run_config: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "flwr"), "run", str(app), "test", "--run-config", run_config, "--stream"],
            cwd=tmp_path,
            env={**cli_env(), "FLWR_HOME": str(flwr_home)},
            capture_output=True,
            check=False,
            text=True,
            timeout=300,
        )

    done = flwr_run(f'config="{config}" run-id="native" runs-dir="{server_dir / "runs"}"')
    assert done.returncode == 0, done.stdout + done.stderr
    out = results(server_dir / "runs" / "native")
    assert out["status"] == "completed", done.stdout
    assert sorted(out["history"][0]["client_prompts"]) == ["site-a", "site-b"]

    # resume reads the config saved with the run, never the TOML named now
    resumed = flwr_run(f'config="{tmp_path / "gone.toml"}" run-id="native" resume=true runs-dir="{server_dir / "runs"}"')
    assert resumed.returncode == 0 and "run native (completed)" in resumed.stdout, resumed.stdout + resumed.stderr
    assert results(server_dir / "runs" / "native")["history"] == out["history"]


def test_bad_flower_input_is_one_line_before_anything_starts(tmp_path):
    """Mistakes a user can make: each is named in one line, exit status 2, nothing started."""
    site_toml = write_site(tmp_path / "site-a", "site-a", "http://127.0.0.1:9/v1", seed=1)
    broken = tmp_path / "broken.toml"
    broken.write_text(site_toml.read_text().replace("[site]", "[site]\nport = 1"))
    config = write_server(tmp_path / "server", ["site-a"])
    cases = [
        (["site", broken, "--superlink", "127.0.0.1:1", "--insecure"], "broken.toml: site.port: unknown field"),
        (["site", tmp_path / "nope.toml", "--superlink", "127.0.0.1:1"], "nope.toml: site file not found"),
        (["site", site_toml, "--superlink", "127.0.0.1:1", "--insecure", "--root-certificates", site_toml], "not both"),
        (["superlink", "--insecure", "--node-auth"], "--node-auth needs TLS"),
        (
            ["superlink", "--ssl-certfile", site_toml, "--ssl-keyfile", site_toml, "--ssl-ca-certfile", site_toml,
             "--node-auth", "--site-key", f"site-a={site_toml}"],
            "--site-key site-a: ",
        ),
        (["superlink", "--ssl-certfile", "cert.pem"], "TLS needs --ssl-certfile, --ssl-keyfile and --ssl-ca-certfile"),
        (["site", site_toml, "--superlink", "127.0.0.1:1", "--insecure", "--auth-key", site_toml], "--auth-key needs TLS"),
        (["run", config, "--insecure"], "--insecure, --root-certificates and --server-secret go with --superlink"),
        (["run", config, "--superlink", "127.0.0.1:1", "--server-secret", tmp_path / "none"], "--server-secret: "),
        (["run", config, "--superlink", f"127.0.0.1:{free_port()}", "--insecure"], "could not be reached"),
    ]
    for args, message in cases:
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
