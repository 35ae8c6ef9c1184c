"""A Redis that keeps nothing on disk is reported loudly, or refused with STORE_REQUIRE_DURABLE
(issue 14, item 8): after its restart every user's data is gone and callers are greeted as new."""

from __future__ import annotations

import logging

import pytest

from memory.settings import Settings
from stores import StoreError, open_store
from tests.fixtures.redis_servers import DurableRedisServer, RedisClusterServers, RedisServer

RISK = "keeps no data on disk"


async def test_a_server_without_persistence_is_reported_at_open(
    fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with await open_store(fresh_redis_server.url, settings=Settings()) as store:
            await store.memories.remember("u1", "fact", "k", "v")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and RISK in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "restart" in message and "appendonly yes" in message and "STORE_REQUIRE_DURABLE" in message

    # what the warning is about: a restart really loses the data
    await fresh_redis_server.arestart()
    async with await open_store(fresh_redis_server.url, settings=Settings()) as store:
        assert await store.memories.get("u1", "fact", "k") is None
        assert (await store.profiles.ensure("u1")).is_first_login is True


async def test_store_require_durable_refuses_it(fresh_redis_server: RedisServer) -> None:
    with pytest.raises(StoreError, match=r"STORE_REQUIRE_DURABLE=true.*keeps no data on disk"):
        await open_store(fresh_redis_server.url, settings=Settings(store_require_durable=True))


async def test_a_persisting_server_is_accepted_silently(
    durable_redis: DurableRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with await open_store(durable_redis.url, settings=Settings(store_require_durable=True)) as store:
            await store.memories.remember("u1", "fact", "k", "v")
    assert not [r for r in caplog.records if RISK in r.getMessage()]


async def test_cluster_nodes_are_checked_too(redis_cluster: RedisClusterServers, redis_cluster_store_url: str) -> None:
    with pytest.raises(StoreError, match="keeps no data on disk"):
        await open_store(redis_cluster_store_url, settings=Settings(store_require_durable=True))


async def test_config_get_not_allowed_is_refused_only_when_durability_is_required(
    fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_redis_server.client() as admin:  # like a managed Redis: CONFIG is off limits for the app user
        admin.execute_command("ACL", "SETUSER", "app", "on", ">app-password", "~*", "&*", "+@all", "-config")
    url = fresh_redis_server.url.replace("redis://", "redis://app:app-password@")
    with pytest.raises(StoreError, match="cannot be checked"):
        await open_store(url, settings=Settings(store_require_durable=True))
    with caplog.at_level(logging.INFO):
        async with await open_store(url, settings=Settings()) as store:
            await store.memories.remember("u1", "fact", "k", "v")
    assert any("could not read the persistence settings" in r.getMessage() for r in caplog.records)
    assert "app-password" not in caplog.text
