"""The Postgres store when connections die, the server is down, or a pooler sits in between."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest
from psycopg import AsyncConnection

from memory.settings import Settings
from stores import StoreUnavailableError, open_store
from stores.postgres import PostgresStore
from stores.postgres.config import parse_url
from tests.contract import factories as f
from tests.fixtures.postgres_servers import PostgresServer, free_port, terminate_store_connections


async def test_next_operation_after_terminate_succeeds(postgres_store_url: str, user_a: str) -> None:
    async with await open_store(postgres_store_url, settings=Settings()) as store:
        await store.memories.remember(user_a, "fact", "before", "written before the kill")
        # several idle pooled connections, all of which die together
        await asyncio.gather(*(store.memories.get(user_a, "fact", "before") for _ in range(5)))
        assert await terminate_store_connections(postgres_store_url) >= 1

        memory = await store.memories.get(user_a, "fact", "before")
        assert memory is not None and memory.value == "written before the kill"
        await store.memories.remember(user_a, "fact", "after", "written after the kill")
        assert await terminate_store_connections(postgres_store_url) >= 1
        await store.threads.save_thread(f.thread("thr_after"), f.ctx(user_a))
        assert (await store.threads.load_thread("thr_after", f.ctx(user_a))).id == "thr_after"
        await store.ping()

    async with await open_store(postgres_store_url, settings=Settings()) as fresh:
        assert {m.key for m in await fresh.memories.list(user_a)} == {"before", "after"}


@pytest.mark.slow
async def test_no_acknowledged_write_is_lost_while_connections_are_killed(postgres_store_url: str, user_a: str) -> None:
    acknowledged: list[str] = []
    failed: list[str] = []
    stop = asyncio.Event()

    async with await open_store(postgres_store_url, settings=Settings()) as store:
        await store.threads.save_thread(f.thread("thr_load"), f.ctx(user_a))

        async def writer(worker: int) -> None:
            n = 0
            while not stop.is_set():
                item_id = f"msg_{worker}_{n}"
                n += 1
                try:
                    await store.threads.add_thread_item(
                        "thr_load", f.user_message(item_id, "thr_load", f.at(n)), f.ctx(user_a)
                    )
                except StoreUnavailableError:
                    failed.append(item_id)  # reported to the caller, so not acknowledged
                else:
                    acknowledged.append(item_id)

        async def killer() -> int:
            kills = 0
            for _ in range(10):
                await asyncio.sleep(0.15)
                kills += await terminate_store_connections(postgres_store_url)
            stop.set()
            return kills

        kills, *_ = await asyncio.gather(killer(), *(writer(w) for w in range(4)))
        assert kills is not None and kills >= 5  # connections really were killed mid-run

        stored = set(f.ids(await f.all_items(store, user_a, "thr_load")))

    assert len(acknowledged) > 50
    assert set(acknowledged) <= stored, "an acknowledged write was lost"
    # the retry hides a single lost connection: nearly every write succeeds
    assert len(failed) <= len(acknowledged) // 10


async def test_unreachable_server_at_open_fails_fast_naming_the_redacted_url() -> None:
    url = f"postgresql://app:hunter2-secret@127.0.0.1:{free_port()}/app"
    started = time.monotonic()

    with pytest.raises(StoreUnavailableError) as caught:
        await open_store(url, settings=Settings(store_connect_timeout=3))

    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "postgresql://app:***@127.0.0.1" in message
    assert "hunter2-secret" not in message and "hunter2-secret" not in repr(caught.value.__cause__)


async def test_unreachable_server_can_fall_back_to_memory_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://app:hunter2-secret@127.0.0.1:{free_port()}/app"
    async with await open_store(url, settings=Settings(store_fallback="memory", store_connect_timeout=2)) as store:
        assert store.url == "memory://"
    assert "hunter2-secret" not in caplog.text


@pytest.mark.slow
async def test_server_restart_fails_clearly_then_recovers(private_postgres: PostgresServer, user_a: str) -> None:
    dbname = private_postgres.create_database()
    url = private_postgres.url(dbname, password="pw-not-shown")
    async with await open_store(url, settings=Settings(store_connect_timeout=3)) as store:
        await store.memories.remember(user_a, "fact", "k", "kept across the restart")
        await asyncio.to_thread(private_postgres.stop)

        with pytest.raises(StoreUnavailableError) as caught:
            await store.memories.get(user_a, "fact", "k")
        assert "127.0.0.1" in str(caught.value) and "pw-not-shown" not in str(caught.value)

        await asyncio.to_thread(private_postgres.start)
        memory = await store.memories.get(user_a, "fact", "k")
        assert memory is not None and memory.value == "kept across the restart"


def test_pooler_settings_from_the_url() -> None:
    supabase = "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
    assert parse_url(supabase).prepare is False  # transaction pooler port detected
    assert parse_url(supabase.replace(":6543/", ":5432/")).prepare is True  # session pooler / direct
    explicit = parse_url("postgresql://u:pw@db.example.com:5432/app?prepare=false&pool_max=3&sslmode=require")
    assert (explicit.prepare, explicit.pool_max) == (False, 3)
    # our own parameters never reach libpq; libpq's do
    assert "prepare" not in explicit.conninfo and "pool_max" not in explicit.conninfo
    assert "sslmode=require" in explicit.conninfo
    assert "pw" not in explicit.redacted.replace("postgresql", "")


@pytest.mark.parametrize("query", ["prepare=maybe", "pool_max=0", "pool_max=lots"])
def test_bad_store_parameters_are_explained(query: str) -> None:
    with pytest.raises(ValueError, match=query.split("=")[0]) as caught:
        parse_url(f"postgresql://u:secret-pw@db.example.com/app?{query}")
    assert "secret-pw" not in str(caught.value)


async def test_store_never_prepares_statements_so_transaction_poolers_work(
    postgres_store_url: str, user_a: str
) -> None:
    # pool_max=1: the check runs on the same server connection as the repeated calls
    async with await open_store(f"{postgres_store_url}?pool_max=1", settings=Settings()) as store:
        assert isinstance(store, PostgresStore)
        for _ in range(8):  # psycopg would prepare a server-side-bound query after 5 runs
            await store.memories.remember(user_a, "fact", "k", "v")
            await store.memories.get(user_a, "fact", "k")
        assert await store.run_as(user_a, "select count(*) from pg_prepared_statements") == [(0,)]


async def test_store_works_with_prepare_false_url(postgres_store_url: str, user_a: str) -> None:
    async with await open_store(f"{postgres_store_url}?prepare=false&pool_max=2", settings=Settings()) as store:
        await store.threads.save_thread(f.thread("thr_pooler"), f.ctx(user_a))
        assert (await store.threads.load_thread("thr_pooler", f.ctx(user_a))).id == "thr_pooler"


async def test_concurrent_ensure_creates_one_profile_under_contention(postgres_store_url: str) -> None:
    user_id = str(uuid.uuid4())
    async with await open_store(f"{postgres_store_url}?pool_max=8", settings=Settings()) as store:
        results = await asyncio.gather(*(store.profiles.ensure(user_id, identity="x") for _ in range(32)))
    assert sum(p.is_first_login for p in results) == 1
    async with await AsyncConnection.connect(postgres_store_url) as conn:
        cursor = await conn.execute("select visits from public.profiles where id = %s", [user_id])
        assert await cursor.fetchall() == [(32,)]


def test_private_cluster_helper_really_stops(private_postgres: PostgresServer) -> None:
    with psycopg.connect(private_postgres.admin_url) as conn:
        assert conn.execute("select current_setting('port')::int").fetchone() == (private_postgres.port,)
    private_postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(private_postgres.admin_url, connect_timeout=2)
    private_postgres.restart() if private_postgres.is_running() else private_postgres.start()
    with psycopg.connect(private_postgres.admin_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
