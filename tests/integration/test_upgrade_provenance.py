"""Upgrading stores written by the previous release (before memory provenance and consent) keeps every row.

The previous release's schema is the migrations it shipped: SQLite schema version 1
(`MIGRATIONS[0]`, applied migrations are never edited) and Postgres sql/0001-0003.
Rows are written in that release's exact shape, then the current code opens the store.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from psycopg import AsyncConnection
from redis import asyncio as aioredis

from stores import UserStore, open_store
from stores.postgres import connect
from stores.postgres import migrations as pg_migrations
from stores.redis.keys import UserKeys
from stores.sqlite.schema import MIGRATIONS

USER = str(uuid.uuid4())
OTHER = str(uuid.uuid4())
CREATED = "2025-06-01T10:00:00.000000+00:00"
UPDATED = "2025-06-02T11:30:00.250000+00:00"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _check_upgraded(store: UserStore) -> None:
    """Old rows read back unchanged (no provenance, memory on) and the new fields work on them."""
    old = await store.memories.get(USER, "relationship", "sister")
    assert old is not None
    assert (old.id, old.value, old.source, old.thread_id, old.item_id) == ("mem_old1", "Maya", "voice", None, None)
    assert (old.created_at, old.updated_at) == (_at(CREATED), _at(UPDATED))
    other = await store.memories.get(OTHER, "preference", "tea")
    assert other is not None and other.value == "oolong"
    profile = await store.profiles.get(USER)
    assert profile is not None and profile.memory_enabled is True and profile.identity == "alice@example.com"
    assert profile.created_at == _at(CREATED)

    updated = await store.memories.remember(
        USER, "relationship", "sister", "Maya Lopez", source="chat", thread_id="thr_new", item_id="msg_9"
    )
    assert (updated.id, updated.thread_id, updated.item_id) == ("mem_old1", "thr_new", "msg_9")
    assert updated.created_at == old.created_at
    assert await store.memories.forget_from(USER, "thr_new") == 1
    assert (await store.profiles.set_memory_enabled(USER, False)).identity == "alice@example.com"
    visit = await store.profiles.ensure(USER)
    assert visit.memory_enabled is False and not visit.is_first_login
    assert [m.value for m in await store.memories.list(OTHER)] == ["oolong"]


# -- SQLite ---------------------------------------------------------------------------
def _previous_sqlite_release(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE schema_version (v INTEGER PRIMARY KEY)")
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (v) VALUES (1)")
        conn.executemany(
            "INSERT INTO memories (user_id, category, key, id, value, source, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (USER, "relationship", "sister", "mem_old1", "Maya", "voice", CREATED, UPDATED),
                (OTHER, "preference", "tea", "mem_old2", "oolong", None, CREATED, CREATED),
            ],
        )
        conn.execute(
            "INSERT INTO profiles (id, identity, email, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
            (USER, "alice@example.com", None, CREATED, UPDATED),
        )
    conn.close()


async def test_sqlite_file_of_the_previous_release_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _previous_sqlite_release(path)

    async with await open_store(f"sqlite:///{path}") as store:
        await _check_upgraded(store)

    conn = sqlite3.connect(path)
    try:
        versions = [row[0] for row in conn.execute("SELECT v FROM schema_version ORDER BY v")]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(memories)")}
    finally:
        conn.close()
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert {"thread_id", "item_id"} <= columns


# -- Postgres -------------------------------------------------------------------------
async def test_postgres_database_of_the_previous_release_is_upgraded_in_place(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = pg_migrations.migrations()
    monkeypatch.setattr(pg_migrations, "migrations", lambda: [m for m in shipped if m.version <= "0003"])
    conn = await connect(empty_postgres_url, 5)
    try:
        assert await pg_migrations.migrate(conn) == ["0001_auth_compat", "0002_tables", "0003_rls"]
    finally:
        await conn.close()
    async with await AsyncConnection.connect(empty_postgres_url, autocommit=True) as admin:
        await admin.execute(
            "insert into public.memories (user_id, category, key, id, value, source, created_at, updated_at) "
            "values (%s, 'relationship', 'sister', 'mem_old1', 'Maya', 'voice', %s, %s), "
            "(%s, 'preference', 'tea', 'mem_old2', 'oolong', null, %s, %s)",
            [USER, CREATED, UPDATED, OTHER, CREATED, CREATED],
        )
        await admin.execute(
            "insert into public.profiles (id, identity, is_first_login, visits, created_at, last_seen_at) "
            "values (%s, 'alice@example.com', false, 3, %s, %s)",
            [USER, CREATED, UPDATED],
        )
    monkeypatch.undo()

    async with await open_store(empty_postgres_url) as store:  # applies the missing migrations on open
        await _check_upgraded(store)

    async with await AsyncConnection.connect(empty_postgres_url) as admin:
        cursor = await admin.execute("select version from public.memory_agent_migrations order by version")
        assert [row[0] for row in await cursor.fetchall()] == [m.version for m in shipped]


# -- Redis (no schema: old JSON and hashes are read as they are) ------------------------
async def test_redis_data_of_the_previous_release_reads_and_updates(redis_store_url: str) -> None:
    client = aioredis.from_url(redis_store_url, decode_responses=True)
    try:
        old: dict[str, str | None] = {
            "id": "mem_old1",
            "user_id": USER,
            "category": "relationship",
            "key": "sister",
            "created_at": CREATED,
            "value": "Maya",
            "source": "voice",
            "updated_at": UPDATED,
        }
        await client.hset(UserKeys(USER).memories, "relationship:sister", json.dumps(old))
        other = {**old, "id": "mem_old2", "user_id": OTHER, "category": "preference", "key": "tea"}
        other.update(value="oolong", source=None, updated_at=CREATED)
        await client.hset(UserKeys(OTHER).memories, "preference:tea", json.dumps(other))
        await client.hset(
            UserKeys(USER).profile,
            mapping={
                "id": USER,
                "created_at": CREATED,
                "first": "0",
                "last_seen_at": UPDATED,
                "identity": "alice@example.com",
            },
        )
    finally:
        await client.aclose()

    async with await open_store(redis_store_url) as store:
        await _check_upgraded(store)
