"""Issue 8, the checkpoint store's part: one writer per run (the lease), no password on screen
or in files, safe run ids, Redis outages ridden out, read-only commands that never write, and
one clear line for every bad checkpoint URL."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import redis

from ..conftest import wait_for
from .cli import COMMAND, SLOW_CLIENT_MODELS, cli, cli_env, finished_clients, read_events, results, start_cli
from .redis_server import RedisServer, free_port

# Slow enough that a run is still going while other commands start (each takes 2-8 s to start
# on a loaded 2-core machine).
SLOW_MODELS = """
[models]
model = "simulated"
kwargs = { latency_s = 0.25 }
"""
# client-3 takes 5 minutes per call: the run is surely still going while a second writer tries,
# whatever the machine's load. The resume after SIGKILL passes --model simulated, which drops
# the configured latencies.
STUCK_CLIENT_3 = SLOW_CLIENT_MODELS.replace("latency_s = 0.15", "latency_s = 300")
PASSWORD = "hunter2-secret"


def _round_finished(events: list[dict], round: int) -> bool:
    return any(e["event"] == "round_finished" and e["round"] == round for e in events)


def _one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def _second_writers_are_refused(config: Path, tmp_path: Path, *checkpoint: str) -> None:
    """While ``busy`` runs: a second run and a resume exit 2 naming the holder; after SIGKILL
    the resume takes over at once and completes the run."""
    run_dir = tmp_path / "runs" / "busy"
    first = start_cli("run", config, "--run-id", "busy", *checkpoint, cwd=tmp_path)
    second: list[subprocess.Popen[str]] = []
    try:
        wait_for(lambda: len(finished_clients(read_events(run_dir), 1)) == 2, 120, "clients 1-2 to finish round 1")
        second = [
            subprocess.Popen(
                [*COMMAND, *map(str, args), *checkpoint], cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for args in (("run", config, "--run-id", "busy"), ("resume", "busy"))
        ]
        for process in second:
            out, err = process.communicate(timeout=120)
            line = _one_line_error(subprocess.CompletedProcess(process.args, process.returncode, out, err))
            assert f"run 'busy' is already running (pid {first.pid} on " in line and " since 20" in line, line
        assert first.poll() is None, "the first run ended before the others were refused: the test lost its window"
    finally:
        for process in [first, *second]:
            process.kill()  # SIGKILL
            process.wait(30)
    before = read_events(run_dir)
    assert not any(e["event"] == "test_finished" for e in before), "the run ended before the kill: no window"
    resumed = cli("resume", "busy", "--model", "simulated", *checkpoint, cwd=tmp_path)  # no wait for the dead holder's lease
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert results(run_dir)["status"] == "completed"
    assert {e["pid"] for e in read_events(run_dir)} == {first.pid, int(read_events(run_dir)[-1]["pid"])}


def test_one_writer_per_run_sqlite(make_config, tmp_path):
    _second_writers_are_refused(make_config(clients=3, rounds=1, models=STUCK_CLIENT_3), tmp_path)


def test_one_writer_per_run_redis(make_config, tmp_path, redis_url):
    _second_writers_are_refused(
        make_config(clients=3, rounds=1, models=STUCK_CLIENT_3), tmp_path, "--checkpoint", redis_url
    )


def _password_server(tmp_path: Path) -> RedisServer:
    directory = tmp_path / "redis-auth"
    directory.mkdir()
    server = RedisServer(directory, persistent=True).start()
    redis.Redis(port=server.port).config_set("requirepass", PASSWORD)
    return server


def test_no_password_in_any_output_or_file(make_config, tmp_path):
    server = _password_server(tmp_path)
    try:
        url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        config = make_config(clients=2, rounds=1)
        env = {**cli_env(), "FEDTEXTGRAD_CHECKPOINT": url}

        def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*COMMAND, *map(str, args)],
                cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=240,
            )

        outputs = []
        done = run("run", config, "--model", "simulated", "--run-id", "r")  # the URL from the environment
        assert done.returncode == 0, done.stderr
        outputs.append(done)
        again = run("run", config, "--model", "simulated", "--run-id", "r")
        line = _one_line_error(again)
        assert f"FEDTEXTGRAD_CHECKPOINT='redis://:PASSWORD@127.0.0.1:{server.port}/0' fedtextgrad-graph resume r" in line
        outputs.append(again)
        for args in (("status", "r"), ("export", "r"), ("report", "r")):
            outputs.append(run(*args))
            assert outputs[-1].returncode == 0, outputs[-1].stderr
        nosuch = cli("resume", "nosuch", "--checkpoint", url, cwd=tmp_path)  # on the command line
        assert "no run 'nosuch' in checkpoint redis://:***@" in _one_line_error(nosuch)
        outputs.append(nosuch)
        for args in (("status", "nosuch"), ("export", "nosuch"), ("report", "nosuch")):
            outputs.append(cli(*args, "--checkpoint", url, cwd=tmp_path))
            _one_line_error(outputs[-1])
        wrong = cli("status", "r", "--checkpoint", url.replace(PASSWORD, "wrong-one"), cwd=tmp_path)
        assert "refused the credentials" in _one_line_error(wrong)
        outputs.append(wrong)
        for done in outputs:
            assert PASSWORD not in done.stdout + done.stderr
        files = [p for p in tmp_path.rglob("*") if p.is_file() and "redis-auth" not in p.parts]
        assert any(p.name == "report.html" for p in files) and any(p.name == "results.json" for p in files)
        for path in files:
            assert PASSWORD.encode() not in path.read_bytes(), path
    finally:
        server.stop()


def test_unsafe_run_ids_exit_2(make_config, tmp_path):
    config = make_config(rounds=1)
    line = _one_line_error(cli("run", config, "--model", "simulated", "--run-id", "../../x", cwd=tmp_path))
    assert "run id '../../x' is not allowed" in line
    for command in ("resume", "status", "export", "report"):
        assert "run id '..' is not allowed" in _one_line_error(cli(command, "..", cwd=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "counting.json"]  # nothing written anywhere


def test_bad_checkpoint_urls_get_one_line(make_config, tmp_path, redis_base_url):
    """``run`` opens the store for writing, ``status`` read-only: each bad URL fails on one line."""
    config = make_config(rounds=1)
    port = int(redis_base_url.rsplit(":", 1)[1].split("/")[0])
    cases = [
        ("run", "sqlite:////etc/passwd/x.sqlite", "cannot create /etc/passwd"),
        ("run", "sqlite:////proc/x.sqlite", "cannot open /proc/x.sqlite as a writable SQLite database"),
        ("run", f"redis://127.0.0.1:{port}/99", "refused the connection: DB index is out of range"),
        ("run", f"redis://127.0.0.1:{port}/0?prefix={{x}}", "must not contain braces"),
        ("status", f"redis://127.0.0.1:{port}/0?ttl=abc", "ttl must be a number of seconds"),
        ("status", f"redis://127.0.0.1:{free_port()}/0", "is unreachable"),
        ("status", "postgres://u:pw@host/db", "unsupported checkpoint URL"),
    ]
    for command, url, expected in cases:
        args = ("run", config, "--model", "simulated") if command == "run" else ("status", "x")
        line = _one_line_error(cli(*args, "--checkpoint", url, cwd=tmp_path))
        assert expected in line, (url, line)
        assert ":pw@" not in line
    assert not (tmp_path / "runs").exists()


def test_a_redis_restart_mid_run_does_not_stop_it(make_config, tmp_path, redis_server: RedisServer):
    """redis-server (fsync-always AOF) is killed mid-run and restarted on its data 5 s later."""
    config = make_config(clients=2, rounds=3, models=SLOW_MODELS)
    run_dir = tmp_path / "runs" / "restart"
    process = start_cli("run", config, "--run-id", "restart", "--checkpoint", redis_server.url(), cwd=tmp_path)
    try:
        wait_for(lambda: _round_finished(read_events(run_dir), 1), 120, "round 1 to finish")
        redis_server.kill()
        down_at = time.monotonic()
        time.sleep(5)
        redis_server.start()
        outage = time.monotonic() - down_at
        assert process.wait(240) == 0, (tmp_path / "cli-output.log").read_text()
    finally:
        process.kill()
        process.wait(30)
    out = results(run_dir)
    assert out["status"] == "completed" and [r["round"] for r in out["history"]] == [1, 2, 3]
    print(f"redis outage of {outage:.1f}s ridden out")  # a figure for the log (-s), not an assertion


def test_dropped_connections_do_not_stop_a_run(make_config, tmp_path, redis_server: RedisServer):
    config = make_config(clients=2, rounds=3, models=SLOW_MODELS)
    run_dir = tmp_path / "runs" / "dropped"
    process = start_cli("run", config, "--run-id", "dropped", "--checkpoint", redis_server.url(), cwd=tmp_path)
    admin = redis.Redis(port=redis_server.port)
    try:
        wait_for(lambda: _round_finished(read_events(run_dir), 1), 120, "round 1 to finish")
        killed = 0
        while process.poll() is None and not _round_finished(read_events(run_dir), 2):
            killed += admin.client_kill_filter(_type="normal", skipme=True)
            time.sleep(0.2)
        assert process.wait(240) == 0, (tmp_path / "cli-output.log").read_text()
    finally:
        process.kill()
        process.wait(30)
    assert killed > 0
    assert results(run_dir)["status"] == "completed"


def test_persistence_off_warns_once_at_start(make_config, tmp_path, redis_url, redis_server: RedisServer):
    config = make_config(rounds=1)
    if not os.environ.get("REDIS_URL"):  # the fixtures' shared server runs with save "" and appendonly no
        done = cli("run", config, "--model", "simulated", "--checkpoint", redis_url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("has persistence off") == 1 and PASSWORD not in done.stderr
    persistent = cli("run", config, "--model", "simulated", "--checkpoint", redis_server.url(), cwd=tmp_path)
    assert persistent.returncode == 0 and "persistence off" not in persistent.stderr


def test_read_only_commands_work_on_a_redis_at_maxmemory(make_config, tmp_path, redis_server: RedisServer):
    url = redis_server.url()
    done = cli("run", make_config(rounds=1), "--model", "simulated", "--run-id", "full", "--checkpoint", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    admin = redis.Redis(port=redis_server.port)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", admin.info("memory")["used_memory"] // 2)
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        admin.setnx("fedtextgrad:schema", "1")  # what setup() sent before: refused now
    other = tmp_path / "elsewhere"
    other.mkdir()
    for command in ("status", "export", "report"):
        read = cli(command, "full", "--checkpoint", url, "--runs-dir", other / "runs", cwd=other)
        assert read.returncode == 0, read.stderr
    admin.config_set("maxmemory", 0)


def test_read_only_commands_do_not_touch_a_sqlite_checkpoint(make_config, tmp_path):
    done = cli("run", make_config(rounds=1), "--model", "simulated", "--run-id", "ro", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "runs" / "ro"
    db = run_dir / "checkpoint.sqlite"
    before = (sorted(p.name for p in run_dir.iterdir()), db.read_bytes(), db.stat().st_mtime_ns)
    assert not any(name.endswith(("-wal", "-shm")) for name in before[0])
    for command in ("status", "export"):
        assert cli(command, "ro", cwd=tmp_path).returncode == 0
    assert (sorted(p.name for p in run_dir.iterdir()), db.read_bytes(), db.stat().st_mtime_ns) == before
    missing = cli("status", "ro", "--checkpoint", f"sqlite:///{tmp_path}/absent.sqlite", cwd=tmp_path)
    assert "no run 'ro'" in _one_line_error(missing) and not (tmp_path / "absent.sqlite").exists()
