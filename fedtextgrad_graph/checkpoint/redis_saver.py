"""LangGraph checkpointers on plain Redis (>= 6.2) or Valkey, with core commands only.

``langgraph-checkpoint-redis`` needs the RedisJSON and RediSearch modules; these savers need
nothing but hashes, sets, sorted sets and ``EVAL``. Every multi-key write is one
``MULTI``/``EXEC`` transaction, so a crash never leaves half a checkpoint behind. Reads touch
only the keys of the thread asked about; ``delete_thread`` never scans the keyspace.

Key layout (``P`` is the prefix, ``T`` a thread id, ``N`` a namespace, both percent-encoded;
``{T}`` is a hash tag, so all of a thread's keys live in one cluster slot)::

    P:threads                   SET   thread ids
    P:{T}:keys                  SET   every key of the thread (for delete and TTL refresh)
    P:{T}:namespaces            SET   checkpoint namespaces
    P:{T}:order:N               ZSET  checkpoint ids, ordered lexicographically (they are time-ordered)
    P:{T}:checkpoints:N         HASH  checkpoint id -> checkpoint, metadata, parent id
    P:{T}:blobs:N               HASH  channel + version -> channel value
    P:{T}:writes:N:C            HASH  task id + index -> pending write of checkpoint C
    P:{T}:run:R                 SET   checkpoints written by run R (for delete_for_runs)
    P:runs:R                    SET   threads with checkpoints of run R
    P:{T}:lease                 STR   the lease of the run whose thread is T (see ``lease``)

With ``ttl_s`` set, every write refreshes the expiry of every key of its thread in the same
transaction, so a thread that is still being written never loses an unchanged blob.

The logic is written once, as generators that yield batches of commands and receive their
results ("sans-IO"); :class:`RedisSaver` runs them with a blocking client and
:class:`AsyncRedisSaver` with an asyncio client.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Coroutine, Generator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import ormsgpack
import redis
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .lease import RedisRunLease, register_run_lease
from .urls import CheckpointError, redacted_url

__all__ = ["AsyncRedisSaver", "RedisSaver"]

SCHEMA_VERSION = "1"
MIN_SERVER_VERSION = (6, 2)
_SEP = "\x00"
_PAGE = 64

# Refresh the expiry of every key of a thread (KEYS[1] is its key set).
_REFRESH_TTL = """
local keys = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(keys) do redis.call('PEXPIRE', key, ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #keys
"""
# Delete every key of a thread (KEYS[1] its key set, KEYS[2] the thread registry).
_DELETE_THREAD = """
local keys = redis.call('SMEMBERS', KEYS[1])
for i = 1, #keys, 256 do redis.call('UNLINK', unpack(keys, i, math.min(i + 255, #keys))) end
redis.call('UNLINK', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return #keys
"""

R = TypeVar("R")  # what a plan returns


def _pack(*items: Any) -> bytes:
    return ormsgpack.packb(list(items))


def _unpack(data: bytes) -> list[Any]:
    items: list[Any] = ormsgpack.unpackb(data)
    return items


@dataclass(frozen=True)
class _Batch:
    """Commands to send in one round trip; ``transaction`` wraps them in MULTI/EXEC."""

    commands: list[tuple[Any, ...]]
    transaction: bool = False


@dataclass
class _ThreadKeys:
    """Key names of one thread."""

    prefix: str
    thread_id: str
    tag: str = field(init=False)

    def __post_init__(self) -> None:
        self.tag = f"{self.prefix}:{{{quote(self.thread_id, safe='')}}}"

    @property
    def keys(self) -> str:
        return f"{self.tag}:keys"

    @property
    def namespaces(self) -> str:
        return f"{self.tag}:namespaces"

    def order(self, ns: str) -> str:
        return f"{self.tag}:order:{quote(ns, safe='')}"

    def checkpoints(self, ns: str) -> str:
        return f"{self.tag}:checkpoints:{quote(ns, safe='')}"

    def blobs(self, ns: str) -> str:
        return f"{self.tag}:blobs:{quote(ns, safe='')}"

    def writes(self, ns: str, checkpoint_id: str) -> str:
        return f"{self.tag}:writes:{quote(ns, safe='')}:{quote(checkpoint_id, safe='')}"

    def run(self, run_id: str) -> str:
        return f"{self.tag}:run:{quote(run_id, safe='')}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _RedisCheckpointLogic(BaseCheckpointSaver[str]):
    """Everything but I/O: key names, encoding, and each operation as a command plan."""

    def __init__(self, *, prefix: str = "fedtextgrad", ttl_s: float | None = None, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        if not prefix or any(ch in prefix for ch in "{}"):
            raise ValueError("prefix must be non-empty and contain no braces")
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.prefix = prefix
        self.ttl_ms = None if ttl_s is None else max(1, int(ttl_s * 1000))

    # -- keys and encoding ---------------------------------------------------------------

    def _thread(self, thread_id: str) -> _ThreadKeys:
        return _ThreadKeys(self.prefix, thread_id)

    @property
    def _threads_key(self) -> str:
        return f"{self.prefix}:threads"

    @property
    def _schema_key(self) -> str:
        return f"{self.prefix}:schema"

    def lease_key(self, run_id: str) -> str:
        """The key of a run's lease (see :mod:`.lease`): in the thread's slot, not in its key set."""
        return f"{self._thread(run_id).tag}:lease"

    def _runs_key(self, run_id: str) -> str:
        return f"{self.prefix}:runs:{quote(run_id, safe='')}"

    def _refresh_ttl(self, t: _ThreadKeys, *extra_keys: str) -> list[tuple[Any, ...]]:
        if self.ttl_ms is None:
            return []
        commands: list[tuple[Any, ...]] = [("EVAL", _REFRESH_TTL, 1, t.keys, self.ttl_ms)]
        commands += [("PEXPIRE", key, self.ttl_ms) for key in extra_keys]
        return commands

    def _decode(self, record: bytes) -> tuple[Checkpoint, tuple[str, bytes], str]:
        """A stored checkpoint record: the checkpoint, its typed metadata, its parent id."""
        cp_type, cp_bytes, md_type, md_bytes, parent = _unpack(record)
        return self.serde.loads_typed((cp_type, cp_bytes)), (md_type, md_bytes), parent

    def _load_tuples(
        self, thread_id: str, refs: list[tuple[str, str, bytes]]
    ) -> Generator[_Batch, list[Any], list[CheckpointTuple]]:
        """Fetch writes and channel values for ``(namespace, checkpoint id, record)`` refs."""
        t = self._thread(thread_id)
        decoded = [self._decode(record) for _, _, record in refs]
        commands: list[tuple[Any, ...]] = []
        for (ns, cid, _), (checkpoint, _, _) in zip(refs, decoded, strict=True):
            fields = [f"{ch}{_SEP}{ver}" for ch, ver in checkpoint["channel_versions"].items()]
            commands += [("HGETALL", t.writes(ns, cid)), ("HMGET", t.blobs(ns), *fields) if fields else ("PING",)]
        results = yield _Batch(commands)
        tuples = []
        for i, ((ns, cid, _), (checkpoint, metadata, parent)) in enumerate(zip(refs, decoded, strict=True)):
            writes, blobs = results[2 * i], results[2 * i + 1]
            values = {}
            for channel, blob in zip(checkpoint["channel_versions"], blobs if isinstance(blobs, list) else [], strict=False):
                if blob is not None:
                    kind, data = _unpack(blob)
                    if kind != "empty":
                        values[channel] = self.serde.loads_typed((kind, data))
            stored = sorted((_unpack(w) for w in (writes or {}).values()), key=lambda w: writes_sort_key(w[4], w[0], w[5]))
            tuples.append(
                CheckpointTuple(
                    config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}},
                    checkpoint={**checkpoint, "channel_values": values},
                    metadata=self.serde.loads_typed(metadata),
                    parent_config=(
                        {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}}
                        if parent
                        else None
                    ),
                    pending_writes=[(w[0], w[1], self.serde.loads_typed((w[2], w[3]))) for w in stored],
                )
            )
        return tuples

    def _versions(self, record: bytes) -> list[tuple[str, Any]]:
        return list(self._decode(record)[0]["channel_versions"].items())

    # -- plans -----------------------------------------------------------------------------

    def _setup_plan(self, *, read_only: bool = False) -> Generator[_Batch, list[Any], None]:
        if read_only:  # only verify: a store at maxmemory or without write rights still reads
            info, schema = yield _Batch([("INFO", "server"), ("GET", self._schema_key)])
            if schema is None:
                schema = SCHEMA_VERSION  # nothing written under this prefix yet
        else:
            info, _, schema = yield _Batch(
                [("INFO", "server"), ("SETNX", self._schema_key, SCHEMA_VERSION), ("GET", self._schema_key)]
            )
        version = tuple(int(p) for p in str(info.get("redis_version", "0.0")).split(".")[:2])
        if version < MIN_SERVER_VERSION:
            raise CheckpointError(f"Redis {info.get('redis_version')} is too old; the saver needs Redis >= 6.2 or Valkey")
        if _text(schema) != SCHEMA_VERSION:
            raise CheckpointError(
                f"prefix {self.prefix!r} holds checkpoint schema {_text(schema)}, this version writes {SCHEMA_VERSION}"
            )

    def _get_tuple_plan(self, config: RunnableConfig) -> Generator[_Batch, list[Any], CheckpointTuple | None]:
        thread_id = config["configurable"]["thread_id"]
        ns = config["configurable"].get("checkpoint_ns", "")
        t = self._thread(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            (latest,) = yield _Batch([("ZREVRANGEBYLEX", t.order(ns), "+", "-", "LIMIT", 0, 1)])
            if not latest:
                return None
            checkpoint_id = _text(latest[0])
        (record,) = yield _Batch([("HGET", t.checkpoints(ns), checkpoint_id)])
        if record is None:
            return None
        (tup,) = yield from self._load_tuples(thread_id, [(ns, checkpoint_id, record)])
        return tup

    def _list_plan(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Generator[_Batch | CheckpointTuple, Any, None]:
        if limit is not None and limit <= 0:
            return
        if config is None:
            (members,) = yield _Batch([("SMEMBERS", self._threads_key)])
            thread_ids = sorted(_text(m) for m in members)
        else:
            thread_ids = [config["configurable"]["thread_id"]]
        wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
        wanted_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        remaining = limit
        for thread_id in thread_ids:
            t = self._thread(thread_id)
            if wanted_ns is None:
                (members,) = yield _Batch([("SMEMBERS", t.namespaces)])
                namespaces = sorted(_text(m) for m in members)
            else:
                namespaces = [wanted_ns]
            upper = f"({before_id}" if before_id else "+"
            count = [] if filter or remaining is None else ["LIMIT", 0, remaining]
            id_lists = yield _Batch([("ZREVRANGEBYLEX", t.order(ns), upper, "-", *count) for ns in namespaces])
            candidates = sorted(
                ((_text(cid), ns) for ns, ids in zip(namespaces, id_lists, strict=True) for cid in ids), reverse=True
            )
            if wanted_id:
                candidates = [(cid, ns) for cid, ns in candidates if cid == wanted_id]
            for start in range(0, len(candidates), _PAGE):
                page = candidates[start : start + _PAGE]
                records = yield _Batch([("HGET", t.checkpoints(ns), cid) for cid, ns in page])
                refs = []
                for (cid, ns), record in zip(page, records, strict=True):
                    if record is None:
                        continue
                    if filter:
                        metadata = self.serde.loads_typed(self._decode(record)[1])
                        if not all(metadata.get(k) == v for k, v in filter.items()):
                            continue
                    refs.append((ns, cid, record))
                    if remaining is not None and len(refs) == remaining:
                        break
                tuples = yield from self._load_tuples(thread_id, refs)
                yield from tuples
                if remaining is not None:
                    remaining -= len(refs)
                    if remaining <= 0:
                        return

    def _put_plan(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> Generator[_Batch, list[Any], RunnableConfig]:
        thread_id = config["configurable"]["thread_id"]
        ns = config["configurable"].get("checkpoint_ns", "")
        t = self._thread(thread_id)
        stored = {key: value for key, value in checkpoint.items() if key != "channel_values"}
        values: dict[str, Any] = checkpoint["channel_values"]
        full_metadata = get_checkpoint_metadata(config, metadata)
        record = _pack(
            *self.serde.dumps_typed(stored),
            *self.serde.dumps_typed(full_metadata),
            config["configurable"].get("checkpoint_id") or "",
        )
        commands: list[tuple[Any, ...]] = [
            ("HSET", t.checkpoints(ns), checkpoint["id"], record),
            ("ZADD", t.order(ns), 0, checkpoint["id"]),
            ("SADD", t.namespaces, ns),
        ]
        keys = [t.checkpoints(ns), t.order(ns), t.namespaces]
        blob_fields: list[Any] = []
        for channel, version in new_versions.items():
            blob = _pack(*self.serde.dumps_typed(values[channel])) if channel in values else _pack("empty", b"")
            blob_fields += [f"{channel}{_SEP}{version}", blob]
        if blob_fields:
            commands.append(("HSET", t.blobs(ns), *blob_fields))
            keys.append(t.blobs(ns))
        extra: list[str] = []
        run_id = full_metadata.get("run_id")
        if isinstance(run_id, str) and run_id:
            commands.append(("SADD", t.run(run_id), _pack(ns, checkpoint["id"])))
            commands.append(("SADD", self._runs_key(run_id), thread_id))
            keys.append(t.run(run_id))
            extra.append(self._runs_key(run_id))
        commands += [("SADD", t.keys, *keys), ("SADD", self._threads_key, thread_id)]
        commands += self._refresh_ttl(t, *extra)
        yield _Batch(commands, transaction=True)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _put_writes_plan(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> Generator[_Batch, list[Any], None]:
        thread_id = config["configurable"]["thread_id"]
        ns = config["configurable"].get("checkpoint_ns", "")
        t = self._thread(thread_id)
        key = t.writes(ns, config["configurable"]["checkpoint_id"])
        commands: list[tuple[Any, ...]] = []
        for idx, (channel, value) in enumerate(writes):
            index = WRITES_IDX_MAP.get(channel, idx)
            payload = _pack(task_id, channel, *self.serde.dumps_typed(value), task_path, index)
            # Regular writes are kept once (a retried task must not duplicate them); special
            # writes (errors, interrupts, ...) replace the previous one of the task.
            commands.append(("HSET" if index < 0 else "HSETNX", key, f"{task_id}{_SEP}{index}", payload))
        if not commands:
            return
        commands += [("SADD", t.keys, key), ("SADD", self._threads_key, thread_id)]
        commands += self._refresh_ttl(t)
        yield _Batch(commands, transaction=True)

    def _delete_thread_plan(self, thread_id: str) -> Generator[_Batch, list[Any], None]:
        t = self._thread(thread_id)
        yield _Batch([("EVAL", _DELETE_THREAD, 2, t.keys, self._threads_key, thread_id)])

    def _delete_for_runs_plan(self, run_ids: Sequence[str]) -> Generator[_Batch, list[Any], None]:
        for run_id in run_ids:
            (threads,) = yield _Batch([("SMEMBERS", self._runs_key(run_id))])
            for thread_id in sorted(_text(x) for x in threads):
                t = self._thread(thread_id)
                (entries,) = yield _Batch([("SMEMBERS", t.run(run_id))])
                commands: list[tuple[Any, ...]] = []
                for entry in entries:
                    ns, cid = _unpack(entry)
                    commands += [
                        ("HDEL", t.checkpoints(ns), cid),
                        ("ZREM", t.order(ns), cid),
                        ("UNLINK", t.writes(ns, cid)),
                        ("SREM", t.keys, t.writes(ns, cid)),
                    ]
                commands += [("UNLINK", t.run(run_id)), ("SREM", t.keys, t.run(run_id))]
                yield _Batch(commands, transaction=True)
            yield _Batch([("UNLINK", self._runs_key(run_id))])

    def _namespaces_and_ids(self, t: _ThreadKeys) -> Generator[_Batch, list[Any], dict[str, list[str]]]:
        (members,) = yield _Batch([("SMEMBERS", t.namespaces)])
        namespaces = sorted(_text(m) for m in members)
        id_lists = yield _Batch([("ZREVRANGEBYLEX", t.order(ns), "+", "-") for ns in namespaces])
        return {ns: [_text(i) for i in ids] for ns, ids in zip(namespaces, id_lists, strict=True)}

    def _copy_thread_plan(self, source_id: str, target_id: str) -> Generator[_Batch, list[Any], None]:
        src, dst = self._thread(source_id), self._thread(target_id)
        ids_by_ns = yield from self._namespaces_and_ids(src)
        if not ids_by_ns:
            return
        reads: list[tuple[Any, ...]] = []
        for ns, ids in ids_by_ns.items():
            reads += [("HGETALL", src.checkpoints(ns)), ("HGETALL", src.blobs(ns))]
            reads += [("HGETALL", src.writes(ns, cid)) for cid in ids]
        results = iter((yield _Batch(reads)))
        commands: list[tuple[Any, ...]] = []
        keys: list[str] = [dst.namespaces]
        extra: list[str] = []
        for ns, ids in ids_by_ns.items():
            checkpoints, blobs = next(results), next(results)
            commands.append(("SADD", dst.namespaces, ns))
            if checkpoints:
                commands.append(("HSET", dst.checkpoints(ns), *[x for kv in checkpoints.items() for x in kv]))
                commands.append(("ZADD", dst.order(ns), *[x for cid in checkpoints for x in (0, cid)]))
                keys += [dst.checkpoints(ns), dst.order(ns)]
            if blobs:
                commands.append(("HSET", dst.blobs(ns), *[x for kv in blobs.items() for x in kv]))
                keys.append(dst.blobs(ns))
            for cid in ids:
                writes = next(results)
                if writes:
                    commands.append(("HSET", dst.writes(ns, cid), *[x for kv in writes.items() for x in kv]))
                    keys.append(dst.writes(ns, cid))
            for cid, record in checkpoints.items():
                run_id = self.serde.loads_typed(self._decode(record)[1]).get("run_id")
                if isinstance(run_id, str) and run_id:
                    commands += [
                        ("SADD", dst.run(run_id), _pack(ns, _text(cid))),
                        ("SADD", self._runs_key(run_id), target_id),
                    ]
                    keys.append(dst.run(run_id))
                    extra.append(self._runs_key(run_id))
        commands += [("SADD", dst.keys, *keys), ("SADD", self._threads_key, target_id)]
        commands += self._refresh_ttl(dst, *extra)
        yield _Batch(commands, transaction=True)

    def _prune_plan(self, thread_ids: Sequence[str], strategy: str) -> Generator[_Batch, list[Any], None]:
        """``keep_latest`` keeps each namespace's newest checkpoint, its writes and the blobs
        it references. It does not walk ``DeltaChannel`` chains (the round graph has none)."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}; use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                yield from self._delete_thread_plan(thread_id)
                continue
            t = self._thread(thread_id)
            ids_by_ns = yield from self._namespaces_and_ids(t)
            latest = [(ns, ids[0]) for ns, ids in ids_by_ns.items() if ids]
            reads = [("HGET", t.checkpoints(ns), cid) for ns, cid in latest] + [("HKEYS", t.blobs(ns)) for ns, _ in latest]
            results = yield _Batch(reads)
            records, blob_fields = results[: len(latest)], results[len(latest) :]
            commands: list[tuple[Any, ...]] = []
            for (ns, _), record, fields in zip(latest, records, blob_fields, strict=True):
                old = ids_by_ns[ns][1:]
                if old:
                    commands += [("HDEL", t.checkpoints(ns), *old), ("ZREM", t.order(ns), *old)]
                    commands += [("UNLINK", *[t.writes(ns, cid) for cid in old])]
                    commands += [("SREM", t.keys, *[t.writes(ns, cid) for cid in old])]
                if record is not None:
                    live = {f"{ch}{_SEP}{ver}" for ch, ver in self._versions(record)}
                    stale = [f for f in fields if _text(f) not in live]
                    if stale:
                        commands.append(("HDEL", t.blobs(ns), *stale))
            if commands:
                yield _Batch(commands, transaction=True)

    def get_next_version(self, current: str | None, channel: None) -> str:
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"


_POOL_SIZE = 32
# Backoff 0.2, 0.4, 0.8 s, then 1 s per retry: about 13 s of waiting in all, so a dropped
# connection or a server restart of several seconds (with persistence) never stops a run.
_RETRIES = 15
_PERSISTENCE = [("CONFIG", "GET", "save"), ("CONFIG", "GET", "appendonly")]


def _pool_options(retry: type[Retry | AsyncRetry]) -> dict[str, Any]:
    """Connections for many concurrent graph tasks: callers wait for a free connection
    rather than fail, and a dropped connection is retried (every write is idempotent).
    ``retry`` is redis-py's blocking or asyncio ``Retry``: the blocking one given to an
    asyncio client retries nothing (it sees only the coroutine, never its error)."""
    return {
        "max_connections": _POOL_SIZE,
        "timeout": 60,
        "retry": retry(ExponentialBackoff(cap=1.0, base=0.1), retries=_RETRIES),
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
        "health_check_interval": 15,
    }


def _pipeline(client: redis.Redis | aioredis.Redis, batch: _Batch) -> Any:
    pipe = client.pipeline(transaction=batch.transaction)
    for command in batch.commands:
        pipe.execute_command(*command)
    return pipe


def _unreachable(where: str, exc: Exception) -> CheckpointError:
    return CheckpointError(f"Redis at {where} is unreachable: {exc}")


def _probe_options(retry: type[Retry | AsyncRetry]) -> dict[str, Any]:
    """One attempt, no retries: a wrong URL fails at once, before the patient pool is used."""
    return {"retry": retry(ExponentialBackoff(), retries=0), "socket_connect_timeout": 5, "socket_timeout": 10}


def _refused(where: str, exc: Exception) -> CheckpointError:
    """A clear line for a URL the server refuses: password, database index, connection."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return CheckpointError(f"Redis at {where} refused the credentials: {exc}")
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return _unreachable(where, exc)
    return CheckpointError(f"Redis at {where} refused the connection: {exc}")


def _persistence_off(replies: list[Any]) -> bool:
    """From the replies to ``_PERSISTENCE``: no RDB save points and no AOF."""
    save, appendonly = ({_text(k): _text(v) for k, v in reply.items()} for reply in replies)
    return save.get("save", "x").strip() == "" and appendonly.get("appendonly") == "no"


class RedisSaver(_RedisCheckpointLogic):
    """Blocking LangGraph checkpointer on plain Redis.

    Args:
        client: A ``redis.Redis`` client (binary replies: ``decode_responses=False``).
        prefix: Prefix of every key, so several deployments can share one server.
        ttl_s: Optional expiry in seconds, refreshed for the whole thread on every write.
        serde: Serializer for checkpoints and writes (LangGraph's default if omitted).
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "fedtextgrad", ttl_s: float | None = None, serde: SerializerProtocol | None = None) -> None:
        super().__init__(prefix=prefix, ttl_s=ttl_s, serde=serde)
        self.client = client
        self._where = "redis"

    @classmethod
    @contextmanager
    def from_conn_string(cls, url: str, *, prefix: str = "fedtextgrad", ttl_s: float | None = None) -> Iterator[RedisSaver]:
        """A saver over a new client for ``redis://`` / ``rediss://`` ``url``; closed on exit."""
        probe = redis.Redis.from_url(url, **_probe_options(Retry))
        try:
            probe.ping()
        except redis.exceptions.RedisError as exc:
            raise _refused(redacted_url(url), exc) from None
        finally:
            probe.close()
        client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, **_pool_options(Retry)))
        saver = cls(client, prefix=prefix, ttl_s=ttl_s)
        saver._where = redacted_url(url)
        try:
            yield saver
        finally:
            client.close()
            client.connection_pool.disconnect()

    def _run(self, plan: Generator[_Batch, list[Any], R]) -> R:
        try:
            step = next(plan)
            while True:
                step = plan.send(self._execute(step))
        except StopIteration as stop:
            result: R = stop.value
            return result

    def _execute(self, batch: _Batch) -> list[Any]:
        try:
            replies: list[Any] = _pipeline(self.client, batch).execute()
            return replies
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise _unreachable(self._where, exc) from exc

    def setup(self, *, read_only: bool = False) -> None:
        """Check the server and record the key schema (idempotent); ``read_only`` only checks."""
        self._run(self._setup_plan(read_only=read_only))

    def persistence_off(self) -> bool:
        """True if the server saves nothing to disk (no RDB save points, no AOF); false if it
        does or will not say (``CONFIG`` is often refused on managed Redis)."""
        try:
            return _persistence_off(self._execute(_Batch(_PERSISTENCE)))
        except redis.exceptions.ResponseError:
            return False

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._run(self._get_tuple_plan(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        plan = self._list_plan(config, filter=filter, before=before, limit=limit)
        result = None
        while True:
            try:
                step = plan.send(result)
            except StopIteration:
                return
            if isinstance(step, CheckpointTuple):
                result = None
                yield step
            else:
                result = self._execute(step)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        return self._run(self._put_plan(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        self._run(self._put_writes_plan(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._run(self._delete_thread_plan(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(self._delete_for_runs_plan(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(self._copy_thread_plan(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(self._prune_plan(thread_ids, strategy))


class AsyncRedisSaver(_RedisCheckpointLogic):
    """Asyncio LangGraph checkpointer on plain Redis (see :class:`RedisSaver`).

    Args:
        client: A ``redis.asyncio.Redis`` client (binary replies).
        prefix: Prefix of every key.
        ttl_s: Optional expiry in seconds, refreshed for the whole thread on every write.
        serde: Serializer for checkpoints and writes.
    """

    def __init__(self, client: aioredis.Redis, *, prefix: str = "fedtextgrad", ttl_s: float | None = None, serde: SerializerProtocol | None = None) -> None:
        super().__init__(prefix=prefix, ttl_s=ttl_s, serde=serde)
        self.client = client
        self._where = "redis"
        self.loop = asyncio.get_running_loop()

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, url: str, *, prefix: str = "fedtextgrad", ttl_s: float | None = None) -> AsyncIterator[AsyncRedisSaver]:
        """A saver over a new asyncio client for ``redis://`` / ``rediss://`` ``url``; closed on exit."""
        probe = aioredis.Redis.from_url(url, **_probe_options(AsyncRetry))
        try:
            await probe.ping()
        except redis.exceptions.RedisError as exc:
            raise _refused(redacted_url(url), exc) from None
        finally:
            await probe.aclose()
        client = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(url, **_pool_options(AsyncRetry)))
        saver = cls(client, prefix=prefix, ttl_s=ttl_s)
        saver._where = redacted_url(url)
        try:
            yield saver
        finally:
            await client.aclose()
            await client.connection_pool.disconnect()

    async def _run(self, plan: Generator[_Batch, list[Any], R]) -> R:
        try:
            step = next(plan)
            while True:
                step = plan.send(await self._execute(step))
        except StopIteration as stop:
            result: R = stop.value
            return result

    async def _execute(self, batch: _Batch) -> list[Any]:
        try:
            replies: list[Any] = await _pipeline(self.client, batch).execute()
            return replies
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise _unreachable(self._where, exc) from exc

    async def setup(self, *, read_only: bool = False) -> None:
        """Check the server and record the key schema (idempotent); ``read_only`` only checks."""
        await self._run(self._setup_plan(read_only=read_only))

    async def persistence_off(self) -> bool:
        """True if the server saves nothing to disk (see :meth:`RedisSaver.persistence_off`)."""
        try:
            return _persistence_off(await self._execute(_Batch(_PERSISTENCE)))
        except redis.exceptions.ResponseError:
            return False

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(self._get_tuple_plan(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        plan = self._list_plan(config, filter=filter, before=before, limit=limit)
        result = None
        while True:
            try:
                step = plan.send(result)
            except StopIteration:
                return
            if isinstance(step, CheckpointTuple):
                result = None
                yield step
            else:
                result = await self._execute(step)

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        return await self._run(self._put_plan(config, checkpoint, metadata, new_versions))

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        await self._run(self._put_writes_plan(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(self._delete_thread_plan(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._run(self._delete_for_runs_plan(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(self._copy_thread_plan(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._run(self._prune_plan(thread_ids, strategy))

    # Blocking access from other threads, as AsyncSqliteSaver allows.
    def _from_thread(self, coro: Coroutine[Any, Any, R]) -> R:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise asyncio.InvalidStateError(
                "Synchronous calls to AsyncRedisSaver are only allowed from a different thread; use the async methods."
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._from_thread(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._from_thread(collect())

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        return self._from_thread(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        self._from_thread(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._from_thread(self.adelete_thread(thread_id))


register_run_lease(AsyncRedisSaver, RedisRunLease)
