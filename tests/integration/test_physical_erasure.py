"""Erasure reaches the bytes: after forget_user, the store's own files / server state hold none of the user's text.

Two users each get a profile, 50 memories and a 50-message thread; one is erased
while the store stays open. SQLite: every file of the store (.db, -wal, -shm) is
scanned byte by byte. Redis: every key on every node is read (SCAN + its values).
Postgres: every row of every table of the database, as text.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import redis

from memory.settings import get_settings
from stores import StoreError, UserStore, open_store
from stores.sqlite import SqliteStore
from tests.contract import factories as f
from tests.fixtures.redis_servers import RedisClusterServers, RedisServer

MEMORIES = 50
MESSAGES = 50


def marker(label: str) -> str:
    return f"zq{label}secret"


async def seed(store: UserStore, user_id: str, label: str) -> None:
    """A profile, 50 memories and one 50-message thread, all carrying the user's marker text."""
    await store.profiles.ensure(user_id, identity=f"{marker(label)}-identity", email=f"{marker(label)}@example.com")
    for i in range(MEMORIES):
        await store.memories.remember(user_id, "fact", f"{label} fact {i}", f"{marker(label)} remembered thing {i}")
    context = f.ctx(user_id)
    await store.threads.save_thread(f.thread("thr_call", f.at(0), title=f"{marker(label)} call"), context)
    for i in range(MESSAGES):
        text = f"{marker(label)} said message number {i} " + "and more words " * (i % 7) * 20
        item = f.user_message(f"msg_{i:03d}", "thr_call", f.at(i + 1), text=text)
        await store.threads.add_thread_item("thr_call", item, context)


async def assert_intact(store: UserStore, user_id: str, label: str) -> None:
    memories = await store.memories.list(user_id)
    assert len(memories) == MEMORIES and all(marker(label) in m.value for m in memories)
    page = await store.threads.load_thread_items("thr_call", None, 100, "asc", f.ctx(user_id))
    assert len(page.data) == MESSAGES
    profile = await store.profiles.get(user_id)
    assert profile is not None and profile.email == f"{marker(label)}@example.com"


def store_files(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name))


def hits(paths: list[Path], text: str) -> dict[str, int]:
    needle = text.encode()
    return {p.name: p.read_bytes().count(needle) for p in paths}


# -- SQLite ------------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'erase.db'}")
    assert isinstance(store, SqliteStore)
    async with store:
        yield store


async def test_sqlite_forget_user_leaves_no_byte_of_the_user_in_any_file(
    sqlite_store: SqliteStore, user_a: str, user_b: str
) -> None:
    await seed(sqlite_store, user_a, "alice")
    await seed(sqlite_store, user_b, "bob")
    files = store_files(sqlite_store.path)
    assert sum(hits(files, marker("alice")).values()) > 0  # the scan sees the text while it is stored

    await sqlite_store.forget_user(user_a)

    files = store_files(sqlite_store.path)
    assert {p.name for p in files} >= {"erase.db", "erase.db-wal", "erase.db-shm"}  # still open
    assert hits(files, marker("alice")) == dict.fromkeys((p.name for p in files), 0)
    assert hits(files, user_a) == dict.fromkeys((p.name for p in files), 0)
    assert sum(hits(files, marker("bob")).values()) > 0
    await assert_intact(sqlite_store, user_b, "bob")


async def test_sqlite_forgetting_a_memory_or_deleting_a_thread_erases_its_bytes(
    sqlite_store: SqliteStore, user_a: str
) -> None:
    context = f.ctx(user_a)
    await sqlite_store.memories.remember(user_a, "fact", "pin", "zqpinsecret 4711")
    await sqlite_store.memories.remember(user_a, "fact", "city", "Lisbon")
    await sqlite_store.threads.save_thread(f.thread("thr_1", f.at(0)), context)
    await sqlite_store.threads.add_thread_item(
        "thr_1", f.user_message("msg_1", "thr_1", f.at(1), text="zqthreadsecret words"), context
    )
    files = store_files(sqlite_store.path)
    assert sum(hits(files, "zqpinsecret").values()) > 0 and sum(hits(files, "zqthreadsecret").values()) > 0

    assert await sqlite_store.memories.forget(user_a, "fact", "pin")
    await sqlite_store.threads.delete_thread("thr_1", context)

    files = store_files(sqlite_store.path)
    assert sum(hits(files, "zqpinsecret").values()) == 0
    assert sum(hits(files, "zqthreadsecret").values()) == 0
    assert [m.key for m in await sqlite_store.memories.list(user_a)] == ["city"]


async def test_sqlite_erase_also_removes_stale_copies_left_by_page_splits(sqlite_store: SqliteStore) -> None:
    """Rows moved by a page split leave old copies in the page's unused middle, which secure_delete
    never sees. Many users writing in mixed order make such splits; each erase must still leave
    no byte of the erased user, in any file."""
    rng = random.Random(1)
    users = [str(uuid.uuid4()) for _ in range(14)]
    writes = [(n, i) for n in range(len(users)) for i in range(100)]
    rng.shuffle(writes)
    for n, i in writes:
        text = f"{marker(f'user{n:02d}')} thing {i} " + "x" * rng.randrange(80)
        await sqlite_store.memories.remember(users[n], "fact", f"k{rng.randrange(10**6)}", text)

    for n in range(0, len(users), 2):
        await sqlite_store.forget_user(users[n])
        files = store_files(sqlite_store.path)
        assert sum(hits(files, marker(f"user{n:02d}")).values()) == 0
        assert sum(hits(files, users[n]).values()) == 0
    for n in range(1, len(users), 2):
        assert len(await sqlite_store.memories.list(users[n])) == 100


async def test_sqlite_a_burst_of_erases_shares_one_file_rewrite(sqlite_store: SqliteStore, user_a: str) -> None:
    """Each erase rewrites the file before it returns; erases queued together share the rewrite,
    and `erasing_in_bulk` (retention sweeps) rewrites once at the end of the block."""
    for i in range(40):
        await sqlite_store.memories.remember(user_a, "fact", f"k{i}", f"zqburstsecret {i}")
    before = sqlite_store._db.rewrites
    assert await sqlite_store.memories.forget(user_a, "fact", "k0")
    assert sqlite_store._db.rewrites == before + 1

    before = sqlite_store._db.rewrites
    forgotten = await asyncio.gather(*(sqlite_store.memories.forget(user_a, "fact", f"k{i}") for i in range(1, 20)))
    assert all(forgotten)
    assert sqlite_store._db.rewrites - before <= 2  # the first erase's rewrite may start before the others queue

    before = sqlite_store._db.rewrites
    async with sqlite_store.erasing_in_bulk():
        for i in range(20, 40):
            assert await sqlite_store.memories.forget(user_a, "fact", f"k{i}")
        assert sqlite_store._db.rewrites == before
    assert sqlite_store._db.rewrites == before + 1
    assert sum(hits(store_files(sqlite_store.path), "zqburstsecret").values()) == 0


# -- Redis -------------------------------------------------------------------


def redis_text(client: redis.Redis) -> str:
    """Every key name and value on one server, as text (type-aware, so nothing is compressed away)."""
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        parts.append(key)
        kind = str(client.type(key))
        if kind == "string":
            parts.append(str(client.get(key)))
        elif kind == "hash":
            parts.append(json.dumps(client.hgetall(key)))
        elif kind == "zset":
            parts.append(json.dumps(client.zrange(key, 0, -1)))
        elif kind == "set":
            parts.append(json.dumps(sorted(client.smembers(key))))
        elif kind == "list":
            parts.append(json.dumps(client.lrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(repr(client.xrange(key)))
        else:
            raise AssertionError(f"unexpected key type {kind} of {key!r}")
    return "\n".join(parts)


def cluster_text(cluster: RedisClusterServers) -> str:
    texts = []
    for node in cluster.nodes:
        with node.client() as client:
            texts.append(redis_text(client))
    return "\n".join(texts)


async def test_redis_forget_user_leaves_no_key_or_value_of_the_user(
    redis_server: RedisServer, redis_store_url: str, user_a: str, user_b: str
) -> None:
    async with await open_store(redis_store_url) as store:
        await seed(store, user_a, "alice")
        await seed(store, user_b, "bob")
        with redis_server.client() as client:
            assert marker("alice") in redis_text(client)

        await store.forget_user(user_a)

        with redis_server.client() as client:
            text = redis_text(client)
        assert marker("alice") not in text and user_a not in text
        assert marker("bob") in text
        await assert_intact(store, user_b, "bob")


async def test_redis_cluster_forget_user_leaves_no_key_or_value_of_the_user(
    redis_cluster: RedisClusterServers, redis_cluster_store_url: str, user_a: str, user_b: str
) -> None:
    async with await open_store(redis_cluster_store_url) as store:
        await seed(store, user_a, "alice")
        await seed(store, user_b, "bob")
        assert marker("alice") in cluster_text(redis_cluster)

        await store.forget_user(user_a)

        text = cluster_text(redis_cluster)
        assert marker("alice") not in text and user_a not in text
        assert marker("bob") in text
        await assert_intact(store, user_b, "bob")


# -- Postgres ----------------------------------------------------------------


def postgres_rows_text(url: str) -> str:
    """Every row of every table outside the system schemas, as text."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "select quote_ident(table_schema) || '.' || quote_ident(table_name) from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')"
        ).fetchall()
        parts: list[str] = []
        for (table,) in tables:
            rows = conn.execute(f"select t::text from {table} t").fetchall()
            parts.extend(str(row[0]) for row in rows)
    return "\n".join(parts)


async def test_postgres_forget_user_leaves_no_row_of_the_user_in_any_table(
    postgres_store_url: str, user_a: str, user_b: str
) -> None:
    async with await open_store(postgres_store_url) as store:
        await seed(store, user_a, "alice")
        await seed(store, user_b, "bob")
        assert marker("alice") in postgres_rows_text(postgres_store_url)

        await store.forget_user(user_a)

        text = postgres_rows_text(postgres_store_url)
        assert marker("alice") not in text and user_a not in text
        assert marker("bob") in text
        await assert_intact(store, user_b, "bob")


def dead_tuple_text(url: str, table: str) -> str:
    """The raw tuple data still on the table's pages (live and dead), via pageinspect."""
    with psycopg.connect(url, autocommit=True) as conn:
        blocks = conn.execute("select pg_relation_size(%s::regclass) / current_setting('block_size')::int", [table])
        count = int(blocks.fetchone()[0])  # type: ignore[index]
        parts: list[str] = []
        for block in range(count):
            rows = conn.execute(
                "select t_data from heap_page_items(get_raw_page(%s, %s)) where t_data is not null", [table, block]
            ).fetchall()
            parts.extend(bytes(row[0]).decode("utf-8", "replace") for row in rows)
    return "\n".join(parts)


@pytest.mark.parametrize("vacuum", [False, True])
async def test_postgres_erase_vacuum_prunes_the_dead_tuples(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch, vacuum: bool, user_a: str, user_b: str
) -> None:
    monkeypatch.setenv("STORE_ERASE_VACUUM", "true" if vacuum else "false")
    get_settings.cache_clear()
    async with await open_store(empty_postgres_url) as store:
        with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
            conn.execute("create extension if not exists pageinspect")
            conn.execute("alter table public.memories set (autovacuum_enabled = false)")  # only our VACUUM
        await seed(store, user_a, "alice")
        await seed(store, user_b, "bob")

        await store.forget_user(user_a)

        pages = dead_tuple_text(empty_postgres_url, "public.memories")
        assert marker("bob") in pages
        # without VACUUM the deleted rows are still on the pages (documented); with it, they are gone
        assert (marker("alice") in pages) is not vacuum
        await assert_intact(store, user_b, "bob")


async def test_postgres_erase_is_one_transaction(empty_postgres_url: str, user_a: str) -> None:
    """If any part of the erase fails, nothing of it happened (no half-erased user)."""
    async with await open_store(empty_postgres_url) as store:
        await seed(store, user_a, "alice")
        with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
            conn.execute(
                "create function refuse() returns trigger language plpgsql as "
                "$$ begin raise exception 'profile delete refused'; end $$"
            )
            conn.execute(
                "create trigger refuse before delete on public.profiles for each row execute function refuse()"
            )

        with pytest.raises(StoreError):
            await store.forget_user(user_a)  # the profile is deleted last: everything before it rolls back

        await assert_intact(store, user_a, "alice")
        assert len(await store.memories.history(user_a, limit=1000)) == MEMORIES
