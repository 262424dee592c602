"""One function from a checkpoint URL to a LangGraph saver."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

__all__ = ["CheckpointError", "create_checkpointer", "redacted_url", "sqlite_url"]

logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint URL that cannot be used."""


def redacted_url(url: str, *, mask: str | None = "***") -> str:
    """The URL with any password replaced by ``mask``, or left out (with its colon) when
    ``mask`` is None."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    credentials = f"{user}:{mask}@" if mask is not None else (f"{user}@" if user else "")
    netloc = credentials + host + (f":{parts.port}" if parts.port else "")
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
    if any(ch in prefix for ch in "{}"):
        raise CheckpointError(f"{redacted_url(url)}: prefix {prefix!r} must not contain braces (Redis Cluster hash tags)")
    ttl = query.pop("ttl", None)
    try:
        ttl_s = float(ttl) if ttl is not None else None
    except ValueError:
        raise CheckpointError(f"{redacted_url(url)}: ttl must be a number of seconds") from None
    return urlunsplit(parts._replace(query=urlencode(query))), prefix, ttl_s


@asynccontextmanager
async def create_checkpointer(url: str, *, read_only: bool = False) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Open the saver for a checkpoint URL; close it on exit.

    ``sqlite:///path`` (SQLite file), ``memory://`` (in process, not resumable), or
    ``redis://[:password@]host:port/db`` and ``rediss://`` (plain Redis >= 6.2 or Valkey;
    optional ``?prefix=name`` for the key prefix and ``?ttl=seconds`` for an expiry).

    With ``read_only`` (for status, export, report, load_prompt) nothing is written to the
    store: no setup, no table or schema key created; a store with nothing in it yet reads as
    empty. A Redis without persistence gets a warning (logged) when opened for writing.

    Raises:
        CheckpointError: One line naming the URL (password redacted) and what is wrong.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        yield InMemorySaver()
        return
    async with AsyncExitStack() as stack:
        if scheme in ("redis", "rediss"):
            saver = await _open_redis(stack, url, read_only=read_only)
        elif scheme == "sqlite":
            saver = await _open_sqlite(stack, url, read_only=read_only)
        else:
            raise CheckpointError(
                f"{redacted_url(url)}: unsupported checkpoint URL; use sqlite:///path, memory:// or redis://host:port/db"
            )
        yield saver


async def _open_redis(stack: AsyncExitStack, url: str, *, read_only: bool) -> BaseCheckpointSaver[str]:
    try:
        from .redis_saver import AsyncRedisSaver
    except ImportError:
        raise CheckpointError("redis:// checkpoints need the redis extra: pip install 'fedtextgrad-graph[redis]'") from None
    clean, prefix, ttl_s = _redis_options(url)
    try:
        saver = await stack.enter_async_context(AsyncRedisSaver.from_conn_string(clean, prefix=prefix, ttl_s=ttl_s))
    except ValueError as exc:
        raise CheckpointError(f"{redacted_url(url)}: {exc}") from None
    await saver.setup(read_only=read_only)
    if not read_only and await saver.persistence_off():
        logger.warning(
            "warning: Redis at %s has persistence off (no RDB save points, appendonly no): "
            "a restart of that server loses every checkpoint",
            redacted_url(url),
        )
    return saver


async def _open_sqlite(stack: AsyncExitStack, url: str, *, read_only: bool) -> BaseCheckpointSaver[str]:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _sqlite_path(url)
    if read_only:
        return await _open_sqlite_read_only(stack, url, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{url}: cannot create {path.parent}: {exc}") from None
    try:
        _try_sqlite(str(path), "BEGIN IMMEDIATE")  # first, as aiosqlite leaks its thread when opening fails
        saver = AsyncSqliteSaver(await stack.enter_async_context(aiosqlite.connect(str(path))))
        await saver.setup()
    except (sqlite3.Error, OSError) as exc:
        raise CheckpointError(f"{url}: cannot open {path} as a writable SQLite database: {exc}") from None
    return saver


def _try_sqlite(database: str, statement: str, *, uri: bool = False) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(database, uri=uri, isolation_level=None)
    try:
        return conn.execute(statement).fetchall()
    finally:
        conn.close()


async def _open_sqlite_read_only(stack: AsyncExitStack, url: str, path: Path) -> BaseCheckpointSaver[str]:
    """``mode=ro``, or ``immutable=1`` when no ``-wal`` file exists (no writer since the last
    clean close): then SQLite creates no ``-wal``/``-shm`` files next to the database either."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    if not path.is_file():
        return InMemorySaver()  # nothing saved there yet
    mode = "mode=ro" if path.with_name(path.name + "-wal").exists() else "immutable=1"
    database = f"{path.resolve().as_uri()}?{mode}"
    try:
        if not _try_sqlite(database, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'", uri=True):
            return InMemorySaver()
        conn = await stack.enter_async_context(aiosqlite.connect(database, uri=True))
    except (sqlite3.Error, OSError) as exc:
        raise CheckpointError(f"{url}: cannot read {path} as a SQLite database: {exc}") from None
    saver = AsyncSqliteSaver(conn)
    saver.is_setup = True  # its tables exist; setup() would write (journal mode, CREATE TABLE)
    return saver
