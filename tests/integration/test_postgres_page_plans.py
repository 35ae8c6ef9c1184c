"""A page after a cursor reads a few index pages, however long the thread (counted in buffers, not time).

A cursor lookup that Postgres cannot stop early once read half of a 100,000-item thread
per page (7 ms instead of 0.3 ms); this pins the plan's work, which timing on a shared
machine could not.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from stores import open_store
from stores.postgres.threads import _PAGE_ITEMS, _PAGE_THREADS

USER = "11111111-1111-4111-8111-111111111111"
ITEMS = 20_000


def _buffers(plan: dict) -> int:
    """Shared buffers the whole plan touched (hits and reads)."""
    node = plan["Plan"]
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


@pytest.mark.parametrize("analyze", [True, False], ids=["with statistics", "without statistics (autovacuum off)"])
async def test_a_cursor_page_touches_few_buffers_on_a_long_thread(empty_postgres_url: str, analyze: bool) -> None:
    await (await open_store(empty_postgres_url)).aclose()  # migrate
    async with await psycopg.AsyncConnection.connect(empty_postgres_url, autocommit=True) as conn:
        await conn.execute("alter table public.chatkit_items set (autovacuum_enabled = false)")
        await conn.execute("alter table public.chatkit_threads set (autovacuum_enabled = false)")
        await conn.execute(
            "insert into public.chatkit_threads (user_id, id, sort_key, data) "
            "select %s, 'thr_' || g, g, '{}' from generate_series(1, 2000) g",
            [USER],
        )
        await conn.execute(
            "insert into public.chatkit_items (user_id, thread_id, id, sort_key, data) "
            "select %s, 'thr_1', 'itm_' || g, g, repeat('x', 200) from generate_series(1, %s) g",
            [USER, ITEMS],
        )
        if analyze:
            await conn.execute("analyze")  # what autovacuum does once a table has data
        await conn.execute("set plan_cache_mode = force_generic_plan")
        for descending in (True, False):
            pages = (
                (_PAGE_ITEMS[descending, True], {"user": USER, "thread": "thr_1", "after": f"itm_{ITEMS // 2}"}),
                (_PAGE_THREADS[descending, True], {"user": USER, "after": "thr_1000"}),
            )
            for sql, params in pages:
                cursor = conn.cursor()
                await cursor.execute(
                    f"explain (analyze, buffers, format json) {sql}", {**params, "limit": 21}, prepare=True
                )
                row = await cursor.fetchone()
                assert row is not None
                plan = row[0][0] if isinstance(row[0], list) else json.loads(row[0])[0]
                assert plan["Plan"]["Actual Rows"] == 21
                assert _buffers(plan) < 60, (sql, _buffers(plan))
