"""The lines ``status`` prints about a saved run: where it stands, its models, its files.

Each line says what is true now: no ``None``, no path to a file that does not exist, and a
file older than the checkpoint is said to be older.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..server.participation import quorum_message

__all__ = ["checkpoint_line", "file_lines", "merge_line", "models_line", "progress_line"]


def _where_stopped(state: Mapping[str, Any], finished: int) -> str:
    """Where an unfinished run stopped: in a round, between rounds, or before its final test."""
    if state.get("stop_reason") == "budget":
        return f"stopped at its budget after round {finished}; to go on, raise it (--max-tokens N, --max-usd X)"
    if state.get("stop_reason") is not None:
        return f"stopped ({state['stop_reason']}) before its final test"
    current = int(state.get("round") or 0)
    if current > finished:
        return f"interrupted in round {current}"
    if finished == 0:
        return "interrupted before round 1 (while scoring the initial prompt)"
    return f"interrupted before round {finished + 1}"


def progress_line(payload: Mapping[str, Any], state: Mapping[str, Any], *, resume_command: str) -> str:
    """``run R: completed, 3 round(s) finished, stop reason: max_rounds``; for an unfinished
    run, where it stopped and the command that resumes it."""
    head = f"run {payload['run_id']}: {payload['status']}, {payload['rounds']} round(s) finished"
    status = payload["status"]
    if status == "completed":
        return f"{head}, stop reason: {payload['stop_reason']}"
    if status == "awaiting_review":
        return head
    if status == "paused":
        return f"{head}; {quorum_message(state['paused'])}; once enough clients can answer, resume it with: {resume_command}"
    return f"{head}; {_where_stopped(state, payload['rounds'])} (or still running); resume it with: {resume_command}"


def models_line(payload: Mapping[str, Any]) -> str:
    """The models the finished rounds used (``mixed: ...`` where they differ)."""
    models: Mapping[str, str] = payload["models"]
    if not models:
        return "models: none recorded yet (no round finished)"
    return "models: " + "; ".join(f"{role}: {name}" for role, name in models.items())


def checkpoint_line(redacted: str) -> str:
    """Where the run's checkpoint is (its password redacted)."""
    return f"checkpoint: {redacted}"


def _written_rounds(results: Path) -> tuple[int, str] | None:
    try:
        written = json.loads(results.read_text(encoding="utf-8"))
        return int(written["rounds"]), str(written["status"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def file_lines(payload: Mapping[str, Any], run_dir: Path, export_command: str) -> list[str]:
    """Where the run's results and best prompt are: only files that exist; one older than the
    checkpoint is marked so; a best prompt with no current file points to ``export_command``."""
    lines = []
    results = run_dir / "results.json"
    if results.is_file():
        written = _written_rounds(results)
        if written == (payload["rounds"], payload["status"]):
            lines.append(f"results: {results}")
        else:
            was = "unreadable" if written is None else f"written at {written[0]} round(s), {written[1]}"
            lines.append(f"results: {results} ({was}: older than the checkpoint; rewritten when the run next stops)")
    best, best_file = payload.get("best_prompt"), run_dir / "best_prompt.txt"
    if best and best_file.is_file() and best_file.read_text(encoding="utf-8").strip() == best.strip():
        lines.append(f"best prompt: {best_file}")
    elif best:
        where = "the baseline" if payload.get("best_round") == 0 else f"round {payload.get('best_round')}"
        lines.append(f"best prompt (from {where}): print it with: {export_command}")
    return lines


def merge_line(merge: Mapping[str, Any]) -> str:
    """A round's merge in one line: coverage, UID score (against the deduplicated
    concatenation's), length ratio, repairs, fallback, and the instructions it misses."""
    repairs = merge["repairs"]
    parts = [
        f"coverage {merge['coverage']:.2f} ({merge['covered']}/{merge['units']} instructions)",
        f"UID score {merge['uid_score']:.3f} (concatenation {merge['concat_uid_score']:.3f}; {merge['estimator']})",
        f"length {merge['length_ratio']:.2f}x the longest client prompt",
    ]
    if repairs:
        parts.append(f"{repairs} repair{'s' if repairs != 1 else ''}")
    if merge["fallback"]:
        parts.append("fell back to the deduplicated concatenation")
    if merge["met_targets"] is False:
        parts.append("targets missed")
    line = f"merge ({merge['strategy']}): " + ", ".join(parts)
    if merge["missing"]:
        line += "; missing: " + " | ".join(merge["missing"])
    return line
