"""One writer per run: a lease per run id, kept in the checkpoint store itself.

A process that runs (or resumes) a run holds its lease: a record naming it (host, pid, since,
and a random token) that expires ``LEASE_TTL_S`` after its last renewal. A heartbeat renews it
every ``RENEW_EVERY_S``; it is released when the run ends, normally or not. A second process
that wants the run finds the record and stops with :class:`RunLeaseHeld`. A killed holder's
record expires by itself; one on this host whose pid is gone is taken over at once, so a
``resume`` right after a crash needs no waiting.

Each saver type has its lease store (:class:`RunLease`), found through a registry keyed by the
saver's type: SQLite (a table in the same database file), Redis (a key next to the run's
checkpoints, see ``redis_saver``) and in memory (process-local, also the fallback for saver
types with no lease store of their own).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import sqlite3
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from .redis_saver import AsyncRedisSaver

__all__ = [
    "LEASE_TTL_S",
    "RENEW_EVERY_S",
    "LeaseHolder",
    "RunLease",
    "RunLeaseHeld",
    "RunLeaseLost",
    "hold_run_lease",
    "register_run_lease",
    "run_lease_for",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# 15 s: a holder that is alive renews three times per TTL, so two missed renewals (a store
# restart of a few seconds, a stalled event loop) never lose the lease; a holder killed on
# another host blocks its run for at most 15 s (one on this host not at all).
LEASE_TTL_S = 15.0
RENEW_EVERY_S = 5.0


@dataclass(frozen=True)
class LeaseHolder:
    """The process holding a run: where it runs, since when (UTC), and its random token."""

    host: str
    pid: int
    since: str
    token: str

    @classmethod
    def this_process(cls) -> LeaseHolder:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(socket.gethostname(), os.getpid(), since, secrets.token_hex(16))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> LeaseHolder:
        data = json.loads(text)
        return cls(str(data["host"]), int(data["pid"]), str(data["since"]), str(data["token"]))

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since}"

    def gone(self) -> bool:
        """True if this holder ran on this host and its process no longer exists."""
        return self.host == socket.gethostname() and not _process_alive(self.pid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: gone all the same
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


class RunLeaseHeld(RuntimeError):
    """Another process is running this run (``holder`` says which)."""

    def __init__(self, run_id: str, holder: LeaseHolder) -> None:
        super().__init__(f"run {run_id!r} is already running ({holder.describe()}); wait for it to end or stop that process")
        self.run_id = run_id
        self.holder = holder


class RunLeaseLost(RuntimeError):
    """Another process took over the lease of a running run: this one stopped."""


class RunLease(ABC):
    """A saver's lease records. Every operation is atomic in the store (two processes can
    never both hold a run) and compares the holder's token before changing its record."""

    def __init__(self, saver: BaseCheckpointSaver[str]) -> None:
        self.saver = saver

    @classmethod
    async def open(cls, saver: BaseCheckpointSaver[str]) -> RunLease:
        """The lease store of ``saver`` (may pick another implementation, e.g. in memory)."""
        return cls(saver)

    @abstractmethod
    async def acquire(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> LeaseHolder | None:
        """Take the run if no unexpired record holds it: ``None``; else the current holder."""

    @abstractmethod
    async def replace(self, run_id: str, old: LeaseHolder, new: LeaseHolder, ttl_s: float) -> bool:
        """Give ``old``'s record to ``new`` if ``old`` still holds it."""

    @abstractmethod
    async def renew(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> bool:
        """Extend ``holder``'s record; false if it no longer holds the run."""

    @abstractmethod
    async def release(self, run_id: str, holder: LeaseHolder) -> None:
        """Delete ``holder``'s record (nothing if another holds the run)."""


_LEASES: dict[type[BaseCheckpointSaver[str]], type[RunLease]] = {}


def register_run_lease(saver_type: type[BaseCheckpointSaver[str]], lease_type: type[RunLease]) -> None:
    """Use ``lease_type`` for savers of ``saver_type`` (and its subclasses)."""
    _LEASES[saver_type] = lease_type


async def run_lease_for(saver: BaseCheckpointSaver[str]) -> RunLease:
    """The lease store of ``saver``'s type; process-local for a type with none registered."""
    _register_builtin()
    for cls in type(saver).__mro__:
        if cls in _LEASES:
            return await _LEASES[cls].open(saver)
    logger.info("%s has no lease store: one writer per run is enforced in this process only", type(saver).__name__)
    return MemoryRunLease(saver)


class MemoryRunLease(RunLease):
    """Process-local records, per saver (for ``InMemorySaver``, which no other process sees)."""

    _records: ClassVar[weakref.WeakKeyDictionary[Any, dict[str, tuple[LeaseHolder, float]]]] = weakref.WeakKeyDictionary()

    def _table(self) -> dict[str, tuple[LeaseHolder, float]]:
        return self._records.setdefault(self.saver, {})

    async def acquire(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> LeaseHolder | None:
        current = self._table().get(run_id)
        if current is not None and current[1] > time.monotonic():
            return current[0]
        self._table()[run_id] = (holder, time.monotonic() + ttl_s)
        return None

    def _holds(self, run_id: str, holder: LeaseHolder) -> bool:
        current = self._table().get(run_id)
        return current is not None and current[0].token == holder.token

    async def replace(self, run_id: str, old: LeaseHolder, new: LeaseHolder, ttl_s: float) -> bool:
        if not self._holds(run_id, old):
            return False
        self._table()[run_id] = (new, time.monotonic() + ttl_s)
        return True

    async def renew(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> bool:
        return await self.replace(run_id, holder, holder, ttl_s)

    async def release(self, run_id: str, holder: LeaseHolder) -> None:
        if self._holds(run_id, holder):
            del self._table()[run_id]


_SQLITE_TABLE = """CREATE TABLE IF NOT EXISTS fedtextgrad_run_leases (
    run_id TEXT PRIMARY KEY, token TEXT NOT NULL, holder TEXT NOT NULL, expires_at REAL NOT NULL)"""


class SqliteRunLease(RunLease):
    """A table in the saver's database file, changed in ``BEGIN IMMEDIATE`` transactions on a
    connection of its own (so the saver's transactions are never mixed with the lease's)."""

    def __init__(self, saver: BaseCheckpointSaver[str], path: str) -> None:
        super().__init__(saver)
        self.path = path

    @classmethod
    async def open(cls, saver: BaseCheckpointSaver[str]) -> RunLease:
        sqlite_saver = cast("AsyncSqliteSaver", saver)  # registered for AsyncSqliteSaver only
        async with sqlite_saver.conn.execute("PRAGMA database_list") as cursor:
            rows = await cursor.fetchall()
        path = next((row[2] for row in rows if row[1] == "main"), "")
        return cls(saver, path) if path else MemoryRunLease(saver)  # an in-memory database

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_SQLITE_TABLE)
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        finally:
            conn.close()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._transaction, work)

    async def acquire(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> LeaseHolder | None:
        def work(conn: sqlite3.Connection) -> LeaseHolder | None:
            row = conn.execute(
                "SELECT holder, expires_at FROM fedtextgrad_run_leases WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is not None and row[1] > time.time():
                return LeaseHolder.from_json(row[0])
            conn.execute(
                "INSERT OR REPLACE INTO fedtextgrad_run_leases VALUES (?, ?, ?, ?)",
                (run_id, holder.token, holder.to_json(), time.time() + ttl_s),
            )
            return None

        return await self._run(work)

    async def replace(self, run_id: str, old: LeaseHolder, new: LeaseHolder, ttl_s: float) -> bool:
        return await self._run(
            lambda conn: conn.execute(
                "UPDATE fedtextgrad_run_leases SET token = ?, holder = ?, expires_at = ? WHERE run_id = ? AND token = ?",
                (new.token, new.to_json(), time.time() + ttl_s, run_id, old.token),
            ).rowcount
            == 1
        )

    async def renew(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> bool:
        return await self.replace(run_id, holder, holder, ttl_s)

    async def release(self, run_id: str, holder: LeaseHolder) -> None:
        await self._run(
            lambda conn: conn.execute(
                "DELETE FROM fedtextgrad_run_leases WHERE run_id = ? AND token = ?", (run_id, holder.token)
            )
        )


# KEYS[1] the lease key; ARGV[1] the token that must hold it.
_REDIS_REPLACE = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).token == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
return 0
"""
# Renewing a record that expired meanwhile (the holder stalled, nobody took over) re-creates it.
_REDIS_RENEW = """
local v = redis.call('GET', KEYS[1])
if not v then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2]) return 1 end
if cjson.decode(v).token == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_REDIS_RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).token == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisRunLease(RunLease):
    """A key next to the run's checkpoints (``P:{T}:lease``): ``SET NX PX`` to take it,
    token-comparing scripts to renew, hand over and release it; Redis expires it."""

    @property
    def _redis(self) -> AsyncRedisSaver:
        return cast("AsyncRedisSaver", self.saver)  # registered for AsyncRedisSaver only

    def _key(self, run_id: str) -> str:
        return self._redis.lease_key(run_id)

    async def acquire(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> LeaseHolder | None:
        client = self._redis.client
        while True:
            if await client.set(self._key(run_id), holder.to_json(), nx=True, px=int(ttl_s * 1000)):
                return None
            current = await client.get(self._key(run_id))
            if current is not None:  # else it expired between the two calls: try again
                return LeaseHolder.from_json(current)

    async def replace(self, run_id: str, old: LeaseHolder, new: LeaseHolder, ttl_s: float) -> bool:
        client = self._redis.client
        return bool(await client.eval(_REDIS_REPLACE, 1, self._key(run_id), old.token, new.to_json(), int(ttl_s * 1000)))

    async def renew(self, run_id: str, holder: LeaseHolder, ttl_s: float) -> bool:
        client = self._redis.client
        return bool(
            await client.eval(_REDIS_RENEW, 1, self._key(run_id), holder.token, int(ttl_s * 1000), holder.to_json())
        )

    async def release(self, run_id: str, holder: LeaseHolder) -> None:
        await self._redis.client.eval(_REDIS_RELEASE, 1, self._key(run_id), holder.token)


def _register_builtin() -> None:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    _LEASES.setdefault(InMemorySaver, MemoryRunLease)
    _LEASES.setdefault(AsyncSqliteSaver, SqliteRunLease)


class hold_run_lease:  # a class used like a function: ``async with hold_run_lease(saver, run_id):``
    """Hold the lease of ``run_id`` in ``saver``'s store for the body of an ``async with``.

    Raises :class:`RunLeaseHeld` on entry if another live process holds it. If the heartbeat
    finds the lease held by another process (this one stalled past the TTL and was taken
    over), the body is cancelled and :class:`RunLeaseLost` raised instead, so two writers never
    continue side by side. While the store is unreachable the heartbeat keeps trying; the
    run's own writes fail with the store's error if it stays down.
    """

    def __init__(
        self, saver: BaseCheckpointSaver[str], run_id: str, *, ttl_s: float = LEASE_TTL_S, renew_every_s: float = RENEW_EVERY_S
    ) -> None:
        self.saver = saver
        self.run_id = run_id
        self.ttl_s = ttl_s
        self.renew_every_s = renew_every_s
        self.holder = LeaseHolder.this_process()
        self._lease: RunLease | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._owner: asyncio.Task[Any] | None = None
        self._lost: RunLeaseLost | None = None

    async def __aenter__(self) -> LeaseHolder:
        lease = self._lease = await run_lease_for(self.saver)
        for _ in range(3):  # a record can vanish or change between two calls: look again
            current = await lease.acquire(self.run_id, self.holder, self.ttl_s)
            if current is None:
                break
            if not current.gone():
                raise RunLeaseHeld(self.run_id, current)
            if await lease.replace(self.run_id, current, self.holder, self.ttl_s):
                logger.info("took over run %s from %s, which no longer exists", self.run_id, current.describe())
                break
        else:
            assert current is not None  # every pass that did not break met a holder
            raise RunLeaseHeld(self.run_id, current)
        self._owner = asyncio.current_task()
        self._heartbeat = asyncio.create_task(self._beat(), name=f"lease heartbeat of {self.run_id}")
        return self.holder

    async def _beat(self) -> None:
        assert self._lease is not None
        while True:
            await asyncio.sleep(self.renew_every_s)
            try:
                held = await self._lease.renew(self.run_id, self.holder, self.ttl_s)
            except Exception as exc:  # noqa: BLE001 - the store is down: so are this run's own writes, which fail on their own
                logger.warning("could not renew the lease of run %s (will retry): %s", self.run_id, exc)
                continue
            if not held:
                self._lost = RunLeaseLost(
                    f"run {self.run_id!r} stopped: another process took over its lease, so this one stops writing"
                )
                if self._owner is not None:
                    self._owner.cancel()
                return

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        if self._lost is not None:
            if self._owner is not None:
                self._owner.uncancel()
            raise self._lost from exc
        assert self._lease is not None
        try:
            await self._lease.release(self.run_id, self.holder)
        except Exception as release_error:  # noqa: BLE001 - the record expires by itself
            logger.warning("could not release the lease of run %s: %s", self.run_id, release_error)
