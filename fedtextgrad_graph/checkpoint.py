"""One function from a checkpoint URL to a LangGraph saver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

__all__ = ["CheckpointError", "create_checkpointer", "sqlite_url"]


class CheckpointError(RuntimeError):
    """A checkpoint URL that cannot be used."""


def sqlite_url(path: str | Path) -> str:
    """The ``sqlite:///`` URL of a database file (made absolute)."""
    return f"sqlite:///{Path(path).resolve()}"


def _sqlite_path(url: str) -> Path:
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise CheckpointError(f"{url}: expected sqlite:///relative/path or sqlite:////absolute/path")
    return Path(rest[1:])


@asynccontextmanager
async def create_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Open the saver for ``sqlite:///path`` or ``memory://``; close it on exit."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        yield InMemorySaver()
        return
    if scheme != "sqlite":
        raise CheckpointError(f"{url}: unsupported checkpoint URL; use sqlite:///path or memory://")
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _sqlite_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{url}: cannot create {path.parent}: {exc}") from None
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver
