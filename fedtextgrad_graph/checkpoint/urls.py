"""One function from a checkpoint URL to a LangGraph saver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

__all__ = ["CheckpointError", "create_checkpointer", "redacted_url", "sqlite_url"]


class CheckpointError(RuntimeError):
    """A checkpoint URL that cannot be used."""


def redacted_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def sqlite_url(path: str | Path) -> str:
    """The ``sqlite:///`` URL of a database file (made absolute)."""
    return f"sqlite:///{Path(path).resolve()}"


def _sqlite_path(url: str) -> Path:
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise CheckpointError(f"{url}: expected sqlite:///relative/path or sqlite:////absolute/path")
    return Path(rest[1:])


def _redis_options(url: str) -> tuple[str, str, float | None]:
    """Split our ``prefix`` and ``ttl`` query parameters off a Redis URL."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", "fedtextgrad")
    ttl = query.pop("ttl", None)
    try:
        ttl_s = float(ttl) if ttl is not None else None
    except ValueError:
        raise CheckpointError(f"{url}: ttl must be a number of seconds") from None
    return urlunsplit(parts._replace(query=urlencode(query))), prefix, ttl_s


@asynccontextmanager
async def create_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Open the saver for a checkpoint URL; close it on exit.

    ``sqlite:///path`` (SQLite file), ``memory://`` (in process, not resumable), or
    ``redis://[:password@]host:port/db`` and ``rediss://`` (plain Redis >= 6.2 or Valkey;
    optional ``?prefix=name`` for the key prefix and ``?ttl=seconds`` for an expiry).
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        yield InMemorySaver()
        return
    if scheme in ("redis", "rediss"):
        try:
            from .redis_saver import AsyncRedisSaver
        except ImportError:
            raise CheckpointError("redis:// checkpoints need the redis extra: pip install 'fedtextgrad-graph[redis]'") from None
        clean, prefix, ttl_s = _redis_options(url)
        try:
            saver_cm = AsyncRedisSaver.from_conn_string(clean, prefix=prefix, ttl_s=ttl_s)
        except ValueError as exc:
            raise CheckpointError(f"{redacted_url(url)}: {exc}") from None
        async with saver_cm as saver:
            await saver.setup()
            yield saver
        return
    if scheme != "sqlite":
        raise CheckpointError(
            f"{url}: unsupported checkpoint URL; use sqlite:///path, memory:// or redis://host:port/db"
        )
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _sqlite_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{url}: cannot create {path.parent}: {exc}") from None
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver
