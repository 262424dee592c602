"""A site's last result per run: a resumed server gets finished local work back at once."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..wire import ClientUpdate, TrainRequest

__all__ = ["ResultCache"]


def _fingerprint(request: TrainRequest, settings: str) -> str:
    return hashlib.sha256((json.dumps(request, sort_keys=True) + settings).encode()).hexdigest()


class ResultCache:
    """Keeps, per run, the update of the last round this site finished, keyed by the exact
    request (run, round, client, global prompt and settings) and the site's own settings that
    shape an update (its upload guard). One small JSON file per run.

    Args:
        directory: Where the files live (created on first write).
        settings: The site's settings, as text: a result made under others is not reused.
    """

    def __init__(self, directory: Path, *, settings: str = "") -> None:
        self.directory = directory
        self.settings = settings

    def _path(self, run_id: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]", "-", run_id)[:60]
        return self.directory / f"{slug}-{hashlib.sha256(run_id.encode()).hexdigest()[:12]}.json"

    def get(self, request: TrainRequest) -> ClientUpdate | None:
        """The update this site returned for exactly this request, if it was the last one."""
        try:
            saved: dict[str, Any] = json.loads(self._path(request["run_id"]).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return saved["update"] if saved.get("fingerprint") == _fingerprint(request, self.settings) else None

    def put(self, request: TrainRequest, update: ClientUpdate) -> None:
        """Remember ``update`` as this run's last result (replacing the previous round's)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(request["run_id"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": _fingerprint(request, self.settings), "update": update}), encoding="utf-8")
        tmp.replace(path)
