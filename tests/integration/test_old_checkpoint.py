"""A run checkpointed by the code before delta channels (history and the per-round maps stored
whole in every checkpoint) resumes and finishes under today's code.

``tests/fixtures/checkpoint-before-delta-channels.sqlite`` was written by commit e366684^ (the
last one before the delta channels): ``CONFIG`` below with ``counting.json`` from
``write_bbh``, ``run config.toml --run-id old``, then ``review old --approve`` once, so it waits
for the review of round 2 with round 1 in its history. Only its latest checkpoint is kept (the
old format needs nothing else), and the database was vacuumed: 40 KB.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..conftest import CONFIG_TEMPLATE, write_bbh
from .cli import cli, history_shape, results

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoint-before-delta-channels.sqlite"
CONFIG = CONFIG_TEMPLATE.format(
    clients=2, rounds=3, local_steps=1, strategy="uid", max_concurrency=8, models='[models]\nmodel = "simulated"\n'
) + "\n[review]\nrequired = true\n"


def test_a_checkpoint_from_before_delta_channels_resumes_to_the_same_end(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    write_bbh(data / "counting.json")
    database = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, database)
    where = ["--checkpoint", f"sqlite:///{database}", "--data-dir", str(data)]

    status = cli("status", "old", *where[:2], cwd=tmp_path)
    assert status.returncode == 0 and "round 2 awaits review" in status.stdout, status.stdout + status.stderr
    for _ in range(2):  # rounds 2 and 3
        approved = cli("review", "old", "--approve", *where, cwd=tmp_path)
        assert approved.returncode == 0, approved.stdout + approved.stderr
    out = results(tmp_path / "runs" / "old")
    assert out["status"] == "completed" and [r["round"] for r in out["history"]] == [1, 2, 3]

    # Today's code, from the start, with the same decisions, ends exactly there.
    (tmp_path / "config.toml").write_text(CONFIG.replace('path = "counting.json"', f'path = "{data / "counting.json"}"'), encoding="utf-8")
    assert cli("run", tmp_path / "config.toml", "--run-id", "new", cwd=tmp_path).returncode == 0
    for _ in range(3):
        assert cli("review", "new", "--approve", cwd=tmp_path).returncode == 0
    expected = results(tmp_path / "runs" / "new")
    assert history_shape(out["history"]) == history_shape(expected["history"])
    assert out["best_prompt"] == expected["best_prompt"] and out["test_accuracy"] == expected["test_accuracy"]


MID_BASELINE = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoint-mid-baseline-before-round-one.sqlite"
MID_BASELINE_CONFIG = CONFIG_TEMPLATE.format(
    clients=2, rounds=1, local_steps=1, strategy="uid", max_concurrency=8, models='[models]\nmodel = "simulated"\nkwargs = { latency_s = 60 }\n'
)


def test_a_checkpoint_killed_mid_baseline_by_the_code_before_the_overlap_resumes(tmp_path: Path):
    """``tests/fixtures/checkpoint-mid-baseline-before-round-one.sqlite`` was written by commit
    daebbc0, where the baseline ran before the first round (START -> baseline -> broadcast):
    ``MID_BASELINE_CONFIG`` with ``counting.json`` from ``write_bbh``, ``run config.toml
    --run-id old``, SIGKILL while the baseline's calls (60 s each) were in flight; vacuumed.
    Resumed today, the baseline is scored and the round follows, as a new run does."""
    data = tmp_path / "data"
    data.mkdir()
    write_bbh(data / "counting.json")
    database = tmp_path / "old.sqlite"
    shutil.copy(MID_BASELINE, database)
    resumed = cli("resume", "old", "--model", "simulated", "--checkpoint", f"sqlite:///{database}", "--data-dir", str(data), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (tmp_path / "config.toml").write_text(MID_BASELINE_CONFIG, encoding="utf-8")
    fresh = cli("run", "config.toml", "--model", "simulated", "--run-id", "new", "--data-dir", str(data), cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    old, new = results(tmp_path / "runs" / "old"), results(tmp_path / "runs" / "new")
    assert old["status"] == "completed" and [r["round"] for r in old["history"]] == [1]
    for key in ("baseline_validation_accuracy", "baseline_by_task", "best_prompt", "test_accuracy", "llm_calls"):
        assert old[key] == new[key], key
