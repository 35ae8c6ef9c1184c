"""Shared fixtures: every backend's store URL, and a store opened on it.

`store_url` is parametrised over all backends; each backend's servers are started
by the fixtures in `tests/fixtures/` (private servers on free loopback ports, so
the suite needs nothing running beforehand).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from memory.settings import get_settings
from stores import UserStore, open_store

pytest_plugins = [
    "tests.fixtures.redis_servers",
    "tests.fixtures.postgres_servers",
]

BACKENDS = ["memory", "sqlite", "redis", "redis_cluster", "postgres"]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Tests never read the developer's `.env` or shared data directory."""
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def memory_store_url() -> str:
    return "memory://"


@pytest.fixture
def sqlite_store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a ready store, once per backend."""
    return str(request.getfixturevalue(f"{request.param}_store_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[UserStore]:
    async with await open_store(store_url) as opened:
        yield opened


@pytest.fixture
def user_a() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def user_b() -> str:
    return str(uuid.uuid4())
