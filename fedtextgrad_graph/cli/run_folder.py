"""What a run folder remembers about its run: where its checkpoint is, never its password.

``run`` (and ``resume``) write ``checkpoint.json`` into the run folder when the checkpoint is
not the default ``checkpoint.sqlite`` there, so ``status``, ``export``, ``report``, ``review``
and ``resume`` find the run without ``--checkpoint``. A URL with a password is stored without
it; the password then comes from ``FEDTEXTGRAD_CHECKPOINT`` naming the same store.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..checkpoint import CheckpointError, redacted_url, sqlite_url

__all__ = ["CHECKPOINT_FILE", "recall_checkpoint", "remember_checkpoint", "without_password"]

CHECKPOINT_FILE = "checkpoint.json"


def without_password(url: str) -> str:
    """``url`` with its password left out (user, host, port, path and query kept)."""
    return redacted_url(url, mask=None)


def _absolute(url: str) -> str:
    """A ``sqlite:///relative`` URL made absolute, so the run is found from any folder."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return sqlite_url(url[len("sqlite:///") :])
    return url


def remember_checkpoint(run_dir: Path, url: str) -> None:
    """Write ``checkpoint.json`` in ``run_dir``: ``url`` without its password, and whether it has one."""
    record = {"url": without_password(_absolute(url)), "password": urlsplit(url).password is not None}
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{CHECKPOINT_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / CHECKPOINT_FILE)


def recall_checkpoint(run_dir: Path, env_url: str | None, *, env_name: str) -> str | None:
    """The checkpoint URL remembered in ``run_dir`` (None if none is).

    A URL that needs a password takes it from ``env_url`` (the value of ``env_name``) when that
    names the same store.

    Raises:
        CheckpointError: The file is unreadable, or the password is missing (one line saying
            what to set).
    """
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        url, needs_password = str(record["url"]), bool(record.get("password", False))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot read the remembered checkpoint ({exc}); pass --checkpoint URL") from None
    if not needs_password:
        return url
    if env_url and urlsplit(env_url).password is not None and without_password(env_url) == url:
        return env_url
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    placeholder = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:PASSWORD@{host}"))
    raise CheckpointError(
        f"the checkpoint of this run ({url}) needs a password: set {env_name}='{placeholder}' "
        "with the real password in place of PASSWORD, or pass --checkpoint URL"
    )
