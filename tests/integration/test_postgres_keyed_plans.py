"""A user's statements stay on fitting indexes after their plans were made on empty tables (counted in buffers).

The store prepares each statement once per connection and keeps its generic plan. Made
while the tables were empty, or after `vacuum analyze` found them so (a fresh deployment,
an erase's VACUUM), that plan scanned the whole table; with autovacuum off nothing
re-plans, and at 10,000 memories every remember spent 10 ms reading all of memory_terms.
The plans checked here are the store's own: its pooled connection's prepared statements,
run after its prelude, as a call runs them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import psycopg
import pytest

from memory.settings import Settings
from stores import UserStore, open_store
from stores.postgres.people import _GET_MEMORY
from stores.postgres.prepared import prepared_statement
from stores.postgres.replan import REPLAN_AFTER_CALLS
from stores.postgres.search_index import DELETE_POSTINGS, INSERT_POSTINGS

USER = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
GROWTH = 4_000  # memories, five postings each: 20,000 rows of memory_terms
CHECKED: list[tuple[str, list[Any]]] = [
    (DELETE_POSTINGS, [USER, "fact", "key 1"]),
    (INSERT_POSTINGS, [1, ["tea"], [1], USER, "fact", "key 1"]),
    (_GET_MEMORY, [USER, "fact", "key 1"]),
]


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


async def _store_planned_on_empty_tables(url: str, rls: Literal["auto", "off"]) -> UserStore:
    """A store with one pooled connection whose plans were made after statistics said: empty."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await (await open_store(url)).aclose()  # migrate
        for table in ("memories", "memory_terms", "memory_term_counts", "memory_counts"):
            await conn.execute(f"alter table public.{table} set (autovacuum_enabled = false)")
        await conn.execute("vacuum analyze")
    store = await open_store(f"{url}?pool_max=1", settings=Settings(store_rls=rls))
    for index in range(3):
        await store.memories.remember(USER, "fact", f"key {index}", f"likes tea number {index}", source="chat")
    return store


async def _grow(url: str, user_id: str) -> None:
    """GROWTH memories and their postings for `user_id`, written behind the planner's back."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "insert into public.memories (user_id, category, key, id, value, source, created_at, updated_at) "
            "select %s, 'bulk', 'k' || g, 'mem_' || g, 'v', 'chat', now(), now() from generate_series(1, %s) g",
            [user_id, GROWTH],
        )
        await conn.execute(
            "insert into public.memory_terms (user_id, term, category, key, field, updated_us, id) "
            "select %s, 'term' || t, 'bulk', 'k' || g, 1, g, 'mem_' || g "
            "from generate_series(1, %s) g, generate_series(1, 5) t",
            [user_id, GROWTH],
        )


async def _plans(store: UserStore) -> list[tuple[str, list[str], int]]:
    """(statement, sequential scans, buffers) of each CHECKED statement's cached plan, run and rolled back."""
    db: Any = store._db  # type: ignore[attr-defined]
    found = []
    async with db.pool.connection() as conn:
        cursor = psycopg.AsyncClientCursor(conn)
        for query, params in CHECKED:
            statement = prepared_statement(query)
            await cursor.execute("begin")
            prelude, prelude_params = db._with_prelude(USER, [])[0]
            await cursor.execute(prelude, prelude_params)
            execute = cursor.mogrify(statement.execute_template, statement.values(params))
            await cursor.execute(f"explain (analyze, buffers, format json) {execute}")
            row = await cursor.fetchone()
            await cursor.execute("rollback")
            assert row is not None
            plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
            scans = [node["Node Type"] for node in _nodes(plan) if node["Node Type"] == "Seq Scan"]
            buffers = int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))
            found.append((query, scans, buffers))
    return found


@pytest.mark.parametrize("rls", ["auto", "off"], ids=["as authenticated (RLS)", "as the owner (RLS off)"])
async def test_another_users_growth_costs_nothing_before_any_replanning(
    empty_postgres_url: str, rls: Literal["auto", "off"]
) -> None:
    """Before plans are refreshed, a plan made on empty tables still reads only this user's rows (no seq scan)."""
    store = await _store_planned_on_empty_tables(empty_postgres_url, rls)
    try:
        await _grow(empty_postgres_url, OTHER)
        for query, scans, buffers in await _plans(store):
            assert not scans and buffers < 60, (query, scans, buffers)
    finally:
        await store.aclose()


@pytest.mark.parametrize("rls", ["auto", "off"], ids=["as authenticated (RLS)", "as the owner (RLS off)"])
async def test_plans_made_on_empty_tables_are_replaced_as_the_user_grows(
    empty_postgres_url: str, rls: Literal["auto", "off"]
) -> None:
    store = await _store_planned_on_empty_tables(empty_postgres_url, rls)
    try:
        await _grow(empty_postgres_url, USER)
        for _ in range(REPLAN_AFTER_CALLS):  # the connection's calls: one of them discards its plans
            await store.profiles.get(USER)
        for query, scans, buffers in await _plans(store):
            assert not scans and buffers < 60, (query, scans, buffers)
    finally:
        await store.aclose()
