"""Files and folders the command line writes (or reads) at a path the user gave: an unusable
path ends the command with one line naming the option, the path and why, never a traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import NoReturn

from .view import fail

__all__ = ["check_creatable_folder", "check_writable_file", "ensure_folder", "output_failed", "write_output"]


def _missing_folder(path: Path) -> str:
    """Why the folder of ``path`` is not there: a file stands in its way, or it does not exist."""
    blocking = next((p for p in reversed(path.parents) if p.is_file()), None)
    return f"{blocking} is a file, not a folder" if blocking else f"the folder {path.parent} does not exist"


def _reason(exc: OSError, path: Path) -> str:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not path.parent.is_dir():
        return _missing_folder(path)
    return exc.strerror or str(exc)


def output_failed(option: str, path: Path, exc: OSError, *, action: str = "write") -> NoReturn:
    """Exit (2) with one line: which option's path could not be written (created...), and why."""
    fail(f"{option} {path}: cannot {action} it: {_reason(exc, path)}")


def check_writable_file(path: Path, option: str) -> None:
    """Exit (2) unless a file can be written at ``path`` (its folder exists and is writable,
    and ``path`` is not a folder); call it before work that costs time or LLM calls."""
    if path.is_dir():
        fail(f"{option} {path}: cannot write it: it is a folder, not a file")
    folder = path.parent
    if not folder.is_dir():
        fail(f"{option} {path}: cannot write it: {_missing_folder(path)}")
    if not os.access(folder, os.W_OK | os.X_OK):
        fail(f"{option} {path}: cannot write it: no permission to write in {folder}")


def check_creatable_folder(path: Path, option: str) -> None:
    """Exit (2) unless the folder ``path`` exists and is writable, or can be created (its
    nearest existing ancestor is a writable folder); creates nothing, so a command that fails
    later for another reason leaves no empty folder behind."""
    if path.exists():
        if not path.is_dir():
            fail(f"{option} {path}: cannot create it: it is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            fail(f"{option} {path}: cannot write in it: permission denied")
        return
    ancestor = next(p for p in path.parents if p.exists())
    if not ancestor.is_dir():
        fail(f"{option} {path}: cannot create it: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        fail(f"{option} {path}: cannot create it: no permission to write in {ancestor}")


def write_output(path: Path, content: str | bytes, option: str) -> None:
    """Write ``content`` to ``path`` (text as UTF-8), or exit (2) with one line saying why not."""
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    except OSError as exc:
        output_failed(option, path, exc)


def ensure_folder(path: Path, option: str) -> Path:
    """Create the folder ``path`` (and its parents) if needed and check it is writable, or
    exit (2) with one line saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            fail(f"{option} {path}: cannot create it: it is a file, not a folder")
        output_failed(option, path, exc, action="create")
    if not os.access(path, os.W_OK | os.X_OK):
        fail(f"{option} {path}: cannot write in it: permission denied")
    return path
