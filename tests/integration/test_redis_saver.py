"""The Redis checkpointers against a real redis-server: the official conformance suite and more."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from fedtextgrad_graph import CheckpointError, create_checkpointer
from fedtextgrad_graph.checkpoint.redis_saver import AsyncRedisSaver, RedisSaver

ALL_CAPABILITIES = {"put", "put_writes", "get_tuple", "list", "delete_thread", "delete_for_runs", "copy_thread", "prune"}


class BlockingDriven(RedisSaver):
    """Runs the conformance suite (which calls async methods) through the blocking saver."""

    async def aget_tuple(self, config):
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config, **kwargs):
        for item in await asyncio.to_thread(lambda: list(self.list(config, **kwargs))):
            yield item

    async def aput(self, *args):
        return await asyncio.to_thread(self.put, *args)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id):
        return await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids):
        return await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source, target):
        return await asyncio.to_thread(self.copy_thread, source, target)

    async def aprune(self, thread_ids, *, strategy="keep_latest"):
        return await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))


def _base(url: str) -> str:
    return url.split("?", 1)[0]


async def _conformance(factory) -> Any:
    report = await validate(factory, progress=ProgressCallbacks.quiet())
    report.print_report()
    return report


def _assert_full(report) -> None:
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert not failures, failures
    assert report.passed_all_base() and report.passed_all()
    assert {cap for cap, r in report.results.items() if r.passed} == ALL_CAPABILITIES
    passed = sum(r.tests_passed for r in report.results.values())
    total = passed + sum(r.tests_failed + r.tests_skipped for r in report.results.values())
    print(f"conformance: {passed}/{total} tests, capabilities: {sorted(ALL_CAPABILITIES)}")
    assert passed == total


async def test_async_saver_passes_the_conformance_suite(redis_base_url):
    @checkpointer_test(name="AsyncRedisSaver")
    async def factory():
        async with AsyncRedisSaver.from_conn_string(_base(redis_base_url), prefix=f"conf-{uuid.uuid4().hex}") as saver:
            await saver.setup()
            yield saver

    _assert_full(await _conformance(factory))


async def test_blocking_saver_passes_the_conformance_suite(redis_base_url):
    @checkpointer_test(name="RedisSaver")
    async def factory():
        with BlockingDriven.from_conn_string(_base(redis_base_url), prefix=f"conf-{uuid.uuid4().hex}") as saver:
            saver.setup()
            yield saver

    _assert_full(await _conformance(factory))


async def test_ttl_saver_passes_the_conformance_suite(redis_base_url):
    @checkpointer_test(name="AsyncRedisSaver(ttl)")
    async def factory():
        async with AsyncRedisSaver.from_conn_string(_base(redis_base_url), prefix=f"conf-{uuid.uuid4().hex}", ttl_s=600) as saver:
            await saver.setup()
            yield saver

    _assert_full(await _conformance(factory))


class _Counter(TypedDict):
    n: int


def _counting_graph():
    graph = StateGraph(_Counter)
    graph.add_node("inc", lambda s: {"n": s["n"] + 1})
    graph.add_edge(START, "inc")
    graph.add_edge("inc", END)
    return graph


def _commands(client: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()}


def test_no_keyspace_scans_and_delete_leaves_nothing(redis_server):
    """A graph run, list, get and delete on a private server: no KEYS/SCAN, and nothing left."""
    client = redis.Redis.from_url(redis_server.url())
    with RedisSaver.from_conn_string(redis_server.url(), prefix="app") as saver:
        saver.setup()
        graph = _counting_graph().compile(checkpointer=saver)
        for thread in ("a", "b:with:colons", "c{braces}"):
            for _ in range(3):
                graph.invoke({"n": 0}, {"configurable": {"thread_id": thread}})
        assert graph.get_state({"configurable": {"thread_id": "b:with:colons"}}).values == {"n": 1}
        assert len(list(saver.list({"configurable": {"thread_id": "a"}}, limit=4))) == 4
        assert len(list(saver.list(None, filter={"source": "input"}))) == 9
        saver.delete_thread("b:with:colons")
        assert saver.get_tuple({"configurable": {"thread_id": "a"}}) is not None
    stats = _commands(client)
    assert stats.get("keys", 0) == 0 and stats.get("scan", 0) == 0
    assert not [k for k in client.scan_iter("app:*") if b"b%3Awith%3Acolons" in k]
    client.close()


def test_prefixes_isolate_deployments(redis_base_url):
    base = _base(redis_base_url)
    first, second = (f"iso-{uuid.uuid4().hex}" for _ in range(2))
    config = {"configurable": {"thread_id": "same-thread"}}
    with RedisSaver.from_conn_string(base, prefix=first) as a, RedisSaver.from_conn_string(base, prefix=second) as b:
        _counting_graph().compile(checkpointer=a).invoke({"n": 41}, config)
        assert b.get_tuple(config) is None and list(b.list(None)) == []
        a.delete_thread("same-thread")
        assert a.get_tuple(config) is None


def test_ttl_is_refreshed_for_every_key_of_a_thread_being_written(redis_base_url):
    """Blobs written once (the initial input) outlive the TTL while the thread keeps being written."""
    prefix = f"ttl-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(_base(redis_base_url))
    config = {"configurable": {"thread_id": "t"}}
    with RedisSaver.from_conn_string(_base(redis_base_url), prefix=prefix, ttl_s=1.0) as saver:
        graph = _counting_graph().compile(checkpointer=saver)
        graph.invoke({"n": 0}, config)
        first_keys = set(client.scan_iter(f"{prefix}:*"))
        for _ in range(6):  # 1.8 s of activity, longer than the TTL
            time.sleep(0.3)
            graph.invoke({"n": 0}, config)
        assert first_keys <= set(client.scan_iter(f"{prefix}:*"))
        assert all(0 < client.pttl(k) <= 1000 for k in client.scan_iter(f"{prefix}:{{*"))
        assert len(list(saver.list(config))) >= 7
        time.sleep(1.3)  # idle longer than the TTL: the whole thread expires together
        assert saver.get_tuple(config) is None
        assert list(client.scan_iter(f"{prefix}:{{*")) == []
    client.close()


async def test_setup_is_idempotent_and_guards_the_schema(redis_base_url):
    prefix = f"schema-{uuid.uuid4().hex}"
    async with AsyncRedisSaver.from_conn_string(_base(redis_base_url), prefix=prefix) as saver:
        await saver.setup()
        await saver.setup()
        await saver.client.set(f"{prefix}:schema", "999")
        with pytest.raises(CheckpointError, match="schema 999"):
            await saver.setup()


async def test_unreachable_server_error_names_the_url_without_password():
    with pytest.raises(CheckpointError) as info:
        async with create_checkpointer("redis://:hunter2@127.0.0.1:9/0"):
            pass
    message = str(info.value)
    assert "redis://:***@127.0.0.1:9/0" in message and "unreachable" in message and "hunter2" not in message


async def test_checkpoint_url_options(redis_base_url):
    url = f"{_base(redis_base_url)}?prefix=opts-{uuid.uuid4().hex}&ttl=30"
    async with create_checkpointer(url) as saver:
        assert isinstance(saver, AsyncRedisSaver) and saver.ttl_ms == 30000 and saver.prefix.startswith("opts-")
    with pytest.raises(CheckpointError, match="ttl"):
        async with create_checkpointer(f"{_base(redis_base_url)}?ttl=soon"):
            pass
