"""The change listeners reconnect by themselves: after a Redis restart or a killed LISTEN connection,
subscribers get a resync (re-read everything) and hear later changes again."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from stores import open_store
from stores.changes import Change, Subscription
from tests.fixtures.postgres_servers import PostgresServer
from tests.fixtures.redis_servers import RedisServer

WITHIN = 15.0  # reconnect back-off plus a loaded machine


async def _next_kind(subscription: Subscription, kind: str) -> Change:
    while True:
        change = await asyncio.wait_for(anext(subscription), WITHIN)
        if change.kind == kind:
            return change


async def test_redis_listener_resubscribes_after_a_server_restart(fresh_redis_server: RedisServer) -> None:
    user = str(uuid.uuid4())
    async with await open_store(fresh_redis_server.url) as store:
        changes = store.changes.subscribe(user).start()
        await asyncio.wait_for(changes.listening.wait(), WITHIN)
        await _next_kind(changes, "resync")

        await fresh_redis_server.arestart()
        resync = await _next_kind(changes, "resync")  # changes may have been missed: re-read
        assert resync.user_id == user
        await asyncio.wait_for(changes.listening.wait(), WITHIN)

        async def remembered() -> Change:
            while True:  # the store's own pool reconnects on first use after the restart
                try:
                    await store.memories.remember(user, "preference", "colour", "teal")
                    return await _next_kind(changes, "memory")
                except TimeoutError:
                    continue

        assert (await asyncio.wait_for(remembered(), WITHIN)).op == "remember"
        changes.close()


async def test_postgres_listener_reconnects_after_its_connection_is_killed(
    postgres_server: PostgresServer, postgres_store_url: str, postgres_database: str
) -> None:
    user = str(uuid.uuid4())
    async with await open_store(postgres_store_url) as store:
        changes = store.changes.subscribe(user).start()
        await asyncio.wait_for(changes.listening.wait(), WITHIN)
        await _next_kind(changes, "resync")

        async with await psycopg.AsyncConnection.connect(postgres_server.admin_url, autocommit=True) as admin:
            killed = await admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = 'memory-agent-changes' and datname = %s",
                [postgres_database],
            )
            assert len(await killed.fetchall()) == 1

        resync = await _next_kind(changes, "resync")
        assert resync.user_id == user
        await store.memories.remember(user, "preference", "colour", "teal")
        assert (await _next_kind(changes, "memory")).op == "remember"
        changes.close()
