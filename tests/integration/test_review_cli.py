"""Human review from the command line, each step its own process, with the simulated model."""

from __future__ import annotations

from pathlib import Path

from .cli import cli, read_events, results

REVIEW = "\n[review]\nrequired = true\n"
EDITED = "You will answer a reasoning question. Count each object once.\nThe last line of your response should be of the following format: 'Answer: $VALUE' where VALUE is a numerical value."


def _awaiting(run_dir: Path, round: int) -> dict:
    out = results(run_dir)
    assert out["status"] == "awaiting_review" and out["pending_review"]["round"] == round
    return out


def test_review_pauses_each_round_and_continues_with_the_decisions(make_config, tmp_path: Path):
    config = make_config(clients=2, rounds=3, extra=REVIEW)
    run_dir = tmp_path / "runs" / "rv"
    started = cli("run", config, "--model", "simulated", "--run-id", "rv", cwd=tmp_path)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "round 1 awaits review" in started.stdout and "review it with: fedtextgrad-graph review rv" in started.stdout
    first = _awaiting(run_dir, 1)["pending_review"]
    assert results(run_dir)["latest_prompt"] == first["current"] != first["candidate"]
    status = cli("status", "rv", cwd=tmp_path)
    assert status.returncode == 0 and "awaiting_review" in status.stdout

    resumed = cli("resume", "rv", cwd=tmp_path)
    assert resumed.returncode == 2 and "then add --approve, --edit FILE or --reject" in resumed.stderr
    assert "fedtextgrad-graph review rv" in resumed.stderr

    shown = cli("review", "rv", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert first["candidate"] in shown.stdout and "--- current global prompt" in shown.stdout
    assert f"+{first['candidate']}" in shown.stdout and f"-{first['current']}" in shown.stdout
    assert f"candidate {first['candidate_score']:.3f}" in shown.stdout
    report = cli("report", "rv", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Round 1 awaits review" in (run_dir / "report" / "report.html").read_text()

    edit = tmp_path / "edited.txt"
    edit.write_text(EDITED + "\n", encoding="utf-8")
    edited = cli("review", "rv", "--edit", edit, "--note", "shorter, one tip", cwd=tmp_path)
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert "review: edit: shorter, one tip" in edited.stdout and "round 2 awaits review" in edited.stdout
    second = _awaiting(run_dir, 2)["pending_review"]
    assert second["current"] == EDITED  # the edit is round 2's starting prompt
    assert results(run_dir)["latest_prompt"] == EDITED

    rejected = cli("review", "rv", "--reject", cwd=tmp_path)
    assert rejected.returncode == 0, rejected.stdout + rejected.stderr
    assert _awaiting(run_dir, 3)["pending_review"]["current"] == EDITED  # the rejected merge was dropped

    approved = cli("review", "rv", "--approve", "--note", "ok", cwd=tmp_path)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    out = results(run_dir)
    assert out["status"] == "completed" and out["pending_review"] is None
    decisions = [(r["review"]["decision"], r["review"]["note"]) for r in out["history"]]
    assert decisions == [("edit", "shorter, one tip"), ("reject", None), ("approve", "ok")]
    one, two, three = out["history"]
    assert one["global_prompt"] == two["global_prompt"] == EDITED and not two["improved"]
    assert two["review"]["candidate_prompt"] == second["candidate"]
    assert three["global_prompt"] == out["latest_prompt"] != EDITED
    reviewed = [e for e in read_events(run_dir) if e["event"] == "reviewed"]
    assert [e["decision"] for e in reviewed] == ["edit", "reject", "approve"]

    again = cli("review", "rv", "--approve", cwd=tmp_path)
    assert again.returncode == 2 and "not awaiting review (status: completed)" in again.stderr


def test_review_options_are_checked_before_anything_runs(make_config, tmp_path: Path):
    config = make_config(clients=2, rounds=1, extra=REVIEW)
    assert cli("run", config, "--model", "simulated", "--run-id", "opts", cwd=tmp_path).returncode == 0
    before = (tmp_path / "runs" / "opts" / "results.json").read_text()
    for args, message in [
        (("--approve", "--reject"), "choose one of --approve, --edit FILE and --reject"),
        (("--edit", "missing.txt"), "--edit: cannot read missing.txt"),
        (("--note", "x"), "--note goes with a decision"),
    ]:
        done = cli("review", "opts", *args, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "runs" / "opts" / "results.json").read_text() == before


def test_review_without_a_pending_review_exits_2(make_config, tmp_path: Path):
    config = make_config(clients=2, rounds=1)
    assert cli("run", config, "--model", "simulated", "--run-id", "plain", cwd=tmp_path).returncode == 0
    done = cli("review", "plain", cwd=tmp_path)
    assert done.returncode == 2 and "run plain is not awaiting review (status: completed)" in done.stderr


def test_review_with_a_redis_checkpoint(make_config, tmp_path: Path, redis_url: str):
    config = make_config(clients=2, rounds=1, extra=REVIEW)
    started = cli("run", config, "--model", "simulated", "--run-id", "rr", "--checkpoint", redis_url, cwd=tmp_path)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "review it with: fedtextgrad-graph review rr\n" in started.stdout  # the run folder remembers the checkpoint
    approved = cli("review", "rr", "--approve", cwd=tmp_path)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    out = results(tmp_path / "runs" / "rr")
    assert out["status"] == "completed" and out["history"][0]["review"]["decision"] == "approve"
