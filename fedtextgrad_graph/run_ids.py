"""Safe run ids: a run id becomes a directory name and part of Redis keys."""

from __future__ import annotations

import re

__all__ = ["MAX_RUN_ID_LENGTH", "check_run_id"]

MAX_RUN_ID_LENGTH = 128
_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is safe: letters, digits, ``-``, ``_`` and ``.``, not starting with a
    dot (so never ``.`` or ``..``), at most ``MAX_RUN_ID_LENGTH`` characters.

    Raises:
        ValueError: Naming the run id and what is allowed.
    """
    if not isinstance(run_id, str) or len(run_id) > MAX_RUN_ID_LENGTH or not _SAFE.fullmatch(run_id):
        raise ValueError(
            f"run id {run_id!r} is not allowed: use 1 to {MAX_RUN_ID_LENGTH} letters, digits, '-', '_' or '.', "
            "not starting with '.'"
        )
    return run_id
