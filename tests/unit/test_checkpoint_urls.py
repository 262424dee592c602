"""Checkpoint URLs: read-only opening, bad URLs as one clear error, no password in hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedtextgrad_graph import CheckpointError, create_checkpointer
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.checkpoint.redis_saver import _persistence_off
from fedtextgrad_graph.cli.app import _resume_hint
from fedtextgrad_graph.runs import saved_state


async def test_read_only_sqlite_reads_without_creating_anything(tmp_path: Path):
    url = sqlite_url(tmp_path / "c.sqlite")
    async with create_checkpointer(url, read_only=True) as saver:
        assert await saved_state(saver, "r") is None
    assert list(tmp_path.iterdir()) == []  # a missing file stays missing
    async with create_checkpointer(url) as saver:
        await saver.aput(
            {"configurable": {"thread_id": "r", "checkpoint_ns": ""}},
            {"v": 4, "id": "1", "ts": "", "channel_values": {"x": 1}, "channel_versions": {"x": "1"}, "versions_seen": {}},
            {},
            {"x": "1"},
        )
    before = sorted(p.name for p in tmp_path.iterdir()), (tmp_path / "c.sqlite").read_bytes()
    async with create_checkpointer(url, read_only=True) as saver:
        assert (await saved_state(saver, "r"))["x"] == 1
        with pytest.raises(Exception, match="readonly|read-only|immutable"):
            await saver.conn.execute("CREATE TABLE t (x)")
    assert (sorted(p.name for p in tmp_path.iterdir()), (tmp_path / "c.sqlite").read_bytes()) == before


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////proc/x.sqlite", "cannot open /proc/x.sqlite as a writable SQLite database"),
        ("redis://127.0.0.1:1/0?prefix={x}", "must not contain braces"),
        ("redis://:pw@127.0.0.1:1/0?ttl=abc", "redis://:***@127.0.0.1:1/0?ttl=abc: ttl must be a number"),
        ("mysql://u:pw@h/db", "mysql://u:***@h/db: unsupported checkpoint URL"),
    ],
)
async def test_bad_urls_raise_one_checkpoint_error(url, message):
    with pytest.raises(CheckpointError) as info:
        async with create_checkpointer(url):
            pass
    assert message in str(info.value) and ":pw@" not in str(info.value)


def test_resume_hint_never_shows_a_password():
    hint = _resume_hint("r", "redis://:s3cret@h:6379/0", Path("runs"))
    assert hint.startswith("FEDTEXTGRAD_CHECKPOINT='redis://:PASSWORD@h:6379/0' fedtextgrad-graph resume r")
    assert "s3cret" not in hint
    assert _resume_hint("r", "redis://h:6379/0", Path("runs")) == "fedtextgrad-graph resume r --checkpoint 'redis://h:6379/0'"


def test_persistence_off_reads_config_get_replies():
    assert _persistence_off([{b"save": b""}, {b"appendonly": b"no"}])
    assert not _persistence_off([{b"save": b"3600 1"}, {b"appendonly": b"no"}])
    assert not _persistence_off([{b"save": b""}, {b"appendonly": b"yes"}])
