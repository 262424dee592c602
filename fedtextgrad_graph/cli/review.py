"""The ``review`` command's parts: the decision from its options, and the pending review on screen."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from rich.text import Text

from ..server.review import ReviewDecision, parse_decision
from .view import console, fail

__all__ = ["decision_from_options", "show_review"]


def decision_from_options(approve: bool, edit: Path | None, reject: bool, note: str | None) -> ReviewDecision | None:
    """The decision ``--approve``, ``--edit FILE`` or ``--reject`` (with ``--note``) give, or
    ``None`` with none of them; exits with one line on a bad combination or an unusable file."""
    chosen = [name for name, given in (("--approve", approve), ("--edit", edit is not None), ("--reject", reject)) if given]
    if len(chosen) > 1:
        fail(f"choose one of --approve, --edit FILE and --reject, not {' and '.join(chosen)}")
    if not chosen:
        if note is not None:
            fail("--note goes with a decision: --approve, --edit FILE or --reject")
        return None
    value: dict[str, Any] = {"decision": chosen[0].removeprefix("--")}
    if edit is not None:
        try:
            value["prompt"] = edit.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--edit: cannot read {edit}: {getattr(exc, 'strerror', None) or exc}")
        if not value["prompt"].strip():
            fail(f"--edit: {edit} is empty")
    if note is not None:
        value["note"] = note
    try:
        return parse_decision(value)
    except ValueError as exc:
        fail(str(exc))


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def show_review(run_id: str, request: dict[str, Any]) -> None:
    """The candidate prompt, a unified diff against the current global prompt, and the scores."""
    round = request["round"]
    console.print(
        f"run {run_id}: round {round} awaits review ({request['aggregation']} merge)\n"
        f"validation accuracy: candidate {_score(request['candidate_score'])}, "
        f"current prompt {_score(request['current_score'])}, "
        f"to count as an improvement: above {_score(request['reference_score'])}",
        highlight=False,
        markup=False,
    )
    console.print(Text("\ncandidate prompt:", style="bold"))
    console.print(request["candidate"], highlight=False, markup=False)
    console.print(Text("\ndiff against the current global prompt:", style="bold"))
    diff = difflib.unified_diff(
        request["current"].splitlines(),
        request["candidate"].splitlines(),
        fromfile="current global prompt",
        tofile=f"candidate (round {round})",
        lineterm="",
    )
    lines = list(diff)
    if not lines:
        console.print("(no change)")
    for line in lines:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else ""
        console.print(Text(line, style=style), highlight=False)
