"""Memories stored before the search index existed are found, in the ranker's order, after an upgrade.

The previous release's schema is what it shipped (SQLite versions 1-2, Postgres
sql/0001-0005, Redis without index keys). Its memories are written in that exact
shape, then the current code opens the store: SQLite's version 3 and Postgres's 0006
index them in the migration, Redis on the user's first search.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg import AsyncConnection
from redis import asyncio as aioredis

from memory.ranking import rank
from stores import UserStore, open_store
from stores.postgres import connect
from stores.postgres import migrations as pg_migrations
from stores.redis.keys import UserKeys
from stores.sqlite.schema import MIGRATIONS

USER = str(uuid.uuid4())
OTHER = str(uuid.uuid4())
WORDS = ["tea", "green", "coffee", "likes", "sister", "maya", "lisbon", "jazz", "books", "running", "blue", "dog"]
QUERIES = ["what tea does she like", "sister maya", "jazz books", "running dog", "lisbon", "blue coffee likes"]
BASE = datetime(2025, 6, 1, 10, tzinfo=UTC)


def _old_memories(user_id: str, count: int, seed: int) -> list[dict[str, str | None]]:
    """Memories as the previous release stored them; some share an updated_at, so ties break on the id."""
    chooser = random.Random(seed)
    rows: list[dict[str, str | None]] = []
    for index in range(count):
        moment = (BASE + timedelta(seconds=index // 3)).isoformat(timespec="microseconds")
        rows.append(
            {
                "id": f"mem_{seed}_{index:03d}",
                "user_id": user_id,
                "category": chooser.choice(["preference", "fact", "relationship"]),
                "key": f"{chooser.choice(WORDS)}_{index}",
                "value": " ".join(chooser.choices(WORDS, k=chooser.randint(1, 5))),
                "source": "voice",
                "created_at": moment,
                "updated_at": moment,
            }
        )
    return rows


OLD = _old_memories(USER, 60, 1) + _old_memories(OTHER, 25, 2)


async def _check_indexed(store: UserStore) -> None:
    """Search equals the ranker over the full list, before and after writes on the upgraded data."""
    for user_id in (USER, OTHER):
        everything = await store.memories.list(user_id)
        assert len(everything) == sum(row["user_id"] == user_id for row in OLD)
        for query in QUERIES:
            assert await store.memories.search(user_id, query, limit=7) == rank(everything, query, 7), query

    await store.memories.remember(USER, "preference", "tea", "smoky lapsang, not green tea")
    assert await store.memories.forget(USER, str(OLD[0]["category"]), str(OLD[0]["key"]))
    everything = await store.memories.list(USER)
    for query in QUERIES:
        assert await store.memories.search(USER, query, limit=7) == rank(everything, query, 7), query
    assert (await store.memories.search(USER, "lapsang"))[0].key == "tea"


# -- SQLite ---------------------------------------------------------------------------
async def test_sqlite_memories_of_the_previous_release_are_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE schema_version (v INTEGER PRIMARY KEY)")
        for version in (1, 2):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (v) VALUES (?)", (version,))
        conn.executemany(
            "INSERT INTO memories (user_id, category, key, id, value, source, created_at, updated_at) "
            "VALUES (:user_id, :category, :key, :id, :value, :source, :created_at, :updated_at)",
            OLD,
        )
    conn.close()

    async with await open_store(f"sqlite:///{path}") as store:
        await _check_indexed(store)


# -- Postgres -------------------------------------------------------------------------
async def test_postgres_memories_of_the_previous_release_are_indexed_by_0006(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = pg_migrations.migrations()
    monkeypatch.setattr(pg_migrations, "migrations", lambda: [m for m in shipped if m.version < "0006"])
    conn = await connect(empty_postgres_url, 5)
    try:
        await pg_migrations.migrate(conn)
    finally:
        await conn.close()
    async with await AsyncConnection.connect(empty_postgres_url, autocommit=True) as admin, admin.cursor() as cursor:
        await cursor.executemany(
            "insert into public.memories (user_id, category, key, id, value, source, created_at, updated_at) "
            "values (%(user_id)s, %(category)s, %(key)s, %(id)s, %(value)s, %(source)s, %(created_at)s, "
            "%(updated_at)s)",
            OLD,
        )
    monkeypatch.undo()

    async with await open_store(empty_postgres_url) as store:  # applies 0006 on open
        await _check_indexed(store)


# -- Redis (no schema: indexed lazily, per user, by the first search) -----------------
async def test_redis_memories_of_the_previous_release_are_indexed_on_first_search(redis_store_url: str) -> None:
    client = aioredis.from_url(redis_store_url, decode_responses=True)
    try:
        for row in OLD:
            await client.hset(
                UserKeys(str(row["user_id"])).memories, f"{row['category']}:{row['key']}", json.dumps(row)
            )
    finally:
        await client.aclose()

    async with await open_store(redis_store_url) as store:
        await _check_indexed(store)
        await store.forget_user(USER)
        await store.forget_user(OTHER)
