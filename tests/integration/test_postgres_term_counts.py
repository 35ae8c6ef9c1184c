"""Postgres keeps each user's per-term document frequency exact (sql/0009), and erases it with the user.

A search weighs each query term by how many of the user's memories hold it; Postgres
reads that from `memory_term_counts` instead of counting postings. A count off by one
changes scores (and answers), a row left behind keeps an erased user's words.
"""

from __future__ import annotations

import uuid

import pytest
from psycopg import AsyncConnection

from memory.ranking import rank
from stores import UserStore, open_store
from stores.postgres import connect
from stores.postgres import migrations as pg_migrations

_COUNTS = "select user_id, term, df from public.memory_term_counts where user_id = any(%s) order by 1, 2"
_FROM_POSTINGS = (
    "select user_id, term, count(*) from public.memory_terms where user_id = any(%s) group by 1, 2 order by 1, 2"
)


async def _counts(url: str, users: list[str]) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """(what the table says, what counting the postings gives) for `users`."""
    async with await AsyncConnection.connect(url, autocommit=True) as admin:
        kept = await (await admin.execute(_COUNTS, [users])).fetchall()
        counted = await (await admin.execute(_FROM_POSTINGS, [users])).fetchall()
    return kept, counted


async def _assert_search_matches_ranker(store: UserStore, user_id: str) -> None:
    everything = await store.memories.list(user_id)
    for query in ("green tea", "sister maya lisbon", "jazz", "tea jazz sister"):
        assert await store.memories.search(user_id, query, limit=4) == rank(everything, query, 4), query


async def test_every_write_keeps_the_term_counts_exact(postgres_store_url: str) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    users = [alice, bob]
    async with await open_store(postgres_store_url) as store:
        for user_id in users:
            await store.memories.remember(user_id, "preference", "tea", "green tea, no sugar")
            await store.memories.remember(user_id, "relationship", "sister", "Maya lives in Lisbon and likes tea")
            await store.memories.remember(user_id, "preference", "music", "jazz and more jazz", thread_id="thr_a")
        await store.memories.remember(alice, "preference", "tea", "smoky lapsang")  # replaces the postings
        await store.memories.forget(bob, "preference", "tea")
        assert await store.memories.forget_from(alice, "thr_a") == 1
        kept, counted = await _counts(postgres_store_url, users)
        assert kept == counted and kept, "memory_term_counts must equal a count of the postings"
        assert "tea" in {term for user, term, _ in kept if user == bob}  # Maya still likes tea
        assert {term for user, term, _ in kept if user == alice} >= {"lapsang", "smoky", "maya"}
        assert "jazz" not in {term for user, term, _ in kept if user == alice}  # forgotten with its thread
        for user_id in users:
            await _assert_search_matches_ranker(store, user_id)

        await store.forget_user(alice)
        kept, counted = await _counts(postgres_store_url, [alice])
        assert kept == [] and counted == [], "an erased user's words must not stay in the counts"
        kept, counted = await _counts(postgres_store_url, [bob])
        assert kept == counted and kept


async def test_0009_counts_the_postings_of_an_existing_database(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memories indexed under 0006-0008 get their counts from the migration, and search stays exact."""
    user_id = str(uuid.uuid4())
    shipped = pg_migrations.migrations()
    monkeypatch.setattr(pg_migrations, "migrations", lambda: [m for m in shipped if m.version < "0009"])
    async with await open_store(empty_postgres_url) as store:
        for index in range(30):
            await store.memories.remember(user_id, "fact", f"tea {index}", f"green tea jazz {index % 4} sister")
    monkeypatch.undo()
    conn = await connect(empty_postgres_url, 5)
    try:
        assert await pg_migrations.migrate(conn) == ["0009_search_term_counts"]
    finally:
        await conn.close()
    kept, counted = await _counts(empty_postgres_url, [user_id])
    assert kept == counted and ("tea" in {term for _, term, _ in kept})
    async with await open_store(empty_postgres_url) as store:
        await _assert_search_matches_ranker(store, user_id)
