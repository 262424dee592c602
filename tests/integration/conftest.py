"""Redis for the integration tests: a server the fixtures start, or the user's REDIS_URL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .redis_server import RedisServer

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration ``integration``, so ``-m "not integration"``
    runs the unit suite alone. (The hook sees the whole session's items: filter by path.)"""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``REDIS_URL`` if set, else a redis-server started for this test session."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url()
    server.stop()


@pytest.fixture
def redis_url(redis_base_url: str) -> str:
    """The shared server with a key prefix of this test's own."""
    separator = "&" if "?" in redis_base_url else "?"
    return f"{redis_base_url}{separator}prefix=test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private, persistent redis-server this test may kill and restart."""
    if os.environ.get("REDIS_URL") and shutil.which("redis-server") is None:
        pytest.skip("needs a redis-server binary to kill and restart (REDIS_URL alone is not enough)")
    directory = tmp_path / "redis-data"
    directory.mkdir()
    server = RedisServer(directory, persistent=True).start()
    yield server
    server.stop()
