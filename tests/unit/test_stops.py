from __future__ import annotations

from typing import Any

from fedtextgrad_graph.cli.stops import early_stop_note


def _payload(stop_reason: str, rounds: int, **rules: Any) -> dict[str, Any]:
    return {"stop_reason": stop_reason, "rounds": rounds, "config": {"convergence": {"max_rounds": 5, **rules}}}


def test_an_unchanged_prompt_says_why_and_how_to_run_every_round() -> None:
    note = early_stop_note(_payload("prompt_unchanged", 3, unchanged_rounds=2))
    assert note is not None
    assert "3 of max_rounds = 5" in note and "did not change for 2 round(s)" in note
    assert note.endswith("set [convergence] unchanged_rounds = 0")


def test_patience_and_target_name_their_setting() -> None:
    assert "remove [convergence] patience" in str(early_stop_note(_payload("patience", 2, patience=2)))
    assert "reached 0.9" in str(early_stop_note(_payload("target_accuracy", 1, target_accuracy=0.9)))


def test_no_note_when_every_round_ran() -> None:
    assert early_stop_note(_payload("max_rounds", 5)) is None
    assert early_stop_note(_payload("prompt_unchanged", 5, unchanged_rounds=2)) is None
    assert early_stop_note({"stop_reason": None, "rounds": 1, "config": None}) is None
