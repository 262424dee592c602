"""What a run folder remembers (its checkpoint, never a password) and what ``status`` says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedtextgrad_graph.checkpoint import CheckpointError
from fedtextgrad_graph.cli.run_folder import (
    CHECKPOINT_FILE,
    recall_checkpoint,
    remember_checkpoint,
    without_password,
)
from fedtextgrad_graph.cli.status import file_lines, models_line, progress_line

ENV = "FEDTEXTGRAD_CHECKPOINT"
SECRET = "s3cret"


def test_a_url_without_a_password_is_remembered_as_is(tmp_path: Path):
    remember_checkpoint(tmp_path, "redis://127.0.0.1:6390/0?prefix=p")
    assert recall_checkpoint(tmp_path, None, env_name=ENV) == "redis://127.0.0.1:6390/0?prefix=p"


def test_relative_sqlite_is_remembered_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    remember_checkpoint(tmp_path / "run", "sqlite:///elsewhere/ck.sqlite")
    assert recall_checkpoint(tmp_path / "run", None, env_name=ENV) == f"sqlite:///{tmp_path}/elsewhere/ck.sqlite"


def test_a_password_is_never_written_and_comes_from_the_environment(tmp_path: Path):
    url = f"redis://user:{SECRET}@127.0.0.1:6390/1"
    remember_checkpoint(tmp_path, url)
    assert SECRET not in (tmp_path / CHECKPOINT_FILE).read_text()
    assert json.loads((tmp_path / CHECKPOINT_FILE).read_text()) == {"url": "redis://user@127.0.0.1:6390/1", "password": True}
    assert recall_checkpoint(tmp_path, url, env_name=ENV) == url
    for env in (None, "redis://user:x@127.0.0.1:6391/1", "redis://user@127.0.0.1:6390/1"):
        with pytest.raises(CheckpointError) as caught:
            recall_checkpoint(tmp_path, env, env_name=ENV)
        message = str(caught.value)
        assert f"{ENV}='redis://user:PASSWORD@127.0.0.1:6390/1'" in message and "\n" not in message


def test_nothing_remembered_and_an_unreadable_file(tmp_path: Path):
    assert recall_checkpoint(tmp_path, None, env_name=ENV) is None
    (tmp_path / CHECKPOINT_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="pass --checkpoint URL"):
        recall_checkpoint(tmp_path, None, env_name=ENV)
    assert without_password("redis://:pw@h:1/0") == "redis://h:1/0"


def _payload(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "run_id": "kill-2", "status": "incomplete", "rounds": 1, "stop_reason": None, "best_round": 1,
        "best_prompt": "Count.", "models": {"task": "simulated"},
    }
    return payload | changes


@pytest.mark.parametrize(
    ("state", "where"),
    [
        ({"round": 2}, "interrupted in round 2"),
        ({"round": 1}, "interrupted before round 2"),
        ({"round": 1, "stop_reason": "max_rounds"}, "stopped (max_rounds) before its final test"),
    ],
)
def test_an_unfinished_run_says_where_it_stopped_and_how_to_resume(state: dict[str, object], where: str):
    line = progress_line(_payload(), state, resume_command="fedtextgrad-graph resume kill-2")
    assert where in line and line.endswith("resume it with: fedtextgrad-graph resume kill-2") and "None" not in line


def test_no_round_finished_yet():
    line = progress_line(_payload(rounds=0, best_round=None, best_prompt=None), {"round": 0}, resume_command="R")
    assert "interrupted before round 1" in line
    assert models_line(_payload(models={})) == "models: none recorded yet (no round finished)"


def test_only_files_that_exist_and_match_the_checkpoint(tmp_path: Path):
    export = "fedtextgrad-graph export kill-2"
    assert file_lines(_payload(), tmp_path, export) == [f"best prompt (from round 1): print it with: {export}"]
    (tmp_path / "results.json").write_text(json.dumps({"rounds": 1, "status": "incomplete"}))
    (tmp_path / "best_prompt.txt").write_text("Count.\n")
    assert file_lines(_payload(), tmp_path, export) == [f"results: {tmp_path}/results.json", f"best prompt: {tmp_path}/best_prompt.txt"]
    stale = file_lines(_payload(rounds=3, best_prompt="Count better."), tmp_path, export)
    assert "written at 1 round(s), incomplete: older than the checkpoint" in stale[0]
    assert stale[1] == f"best prompt (from round 1): print it with: {export}"
