"""Writing 10^5 rows quickly for the growth benchmark, always exactly as the store writes them.

The default is the store's public API (`add_thread_item`, `save_thread`) run
concurrently. On Postgres one call is one transaction with a commit, which is too
slow for 10^5 rows on a small machine, so there the store's own INSERT statements
run many rows per transaction on a connection of our own (same SQL, same parameters,
same serialisation, seq assigned by the same identity column): the rows are the ones
the store would write. The growth benchmark reads samples back to check that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from chatkit.types import ThreadItem, ThreadMetadata

from bench.common import run_concurrently
from stores import UserStore, codec

BATCH = 1000


class Seeder:
    """Seeds through the public store API with `concurrency` concurrent calls."""

    path = "public store API, concurrent calls"

    def __init__(self, store: UserStore, concurrency: int) -> None:
        self.store = store
        self.concurrency = concurrency

    async def items(self, user_id: str, thread_id: str, count: int, make: Callable[[int], ThreadItem]) -> float:
        """Add `make(0..count-1)` to the thread; returns seconds."""
        context = {"user_id": user_id}

        async def add(index: int) -> None:
            await self.store.threads.add_thread_item(thread_id, make(index), context)

        return await run_concurrently(count, self.concurrency, add)

    async def threads(self, count: int, make: Callable[[int], tuple[str, ThreadMetadata]]) -> float:
        """Save `make(i)` = (user id, thread) for i in 0..count-1; returns seconds."""

        async def save(index: int) -> None:
            user_id, thread = make(index)
            await self.store.threads.save_thread(thread, {"user_id": user_id})

        return await run_concurrently(count, self.concurrency, save)

    async def aclose(self) -> None:
        """Release what the seeder holds (nothing for the public API)."""


class PostgresBatchSeeder(Seeder):
    """The Postgres store's own upsert statements, `BATCH` rows per transaction on one connection."""

    path = f"the Postgres store's own INSERT statements, {BATCH} rows per transaction"

    def __init__(self, store: UserStore, concurrency: int, conn: Any, put_item: str, put_thread: str) -> None:
        super().__init__(store, concurrency)
        self._conn = conn
        self._put_item = put_item
        self._put_thread = put_thread

    async def _batches(self, sql: str, count: int, row: Callable[[int], Any]) -> float:
        started = time.perf_counter()
        for first in range(0, count, BATCH):
            params = [row(index) for index in range(first, min(count, first + BATCH))]
            try:
                async with self._conn.transaction(), self._conn.cursor() as cursor:
                    await cursor.executemany(sql, params)
            except Exception as exc:
                raise RuntimeError(
                    f"batched Postgres seeding failed ({type(exc).__name__}: {exc}); the store's SQL may have "
                    "changed: rerun with --seed api"
                ) from exc
        return time.perf_counter() - started

    async def items(self, user_id: str, thread_id: str, count: int, make: Callable[[int], ThreadItem]) -> float:
        def row(index: int) -> dict[str, Any]:
            item = make(index)
            return {
                "user": user_id,
                "thread": thread_id,
                "item": item.id,
                "sort_key": codec.sort_key(item.created_at),
                "data": codec.dump_item(item),
            }

        return await self._batches(self._put_item, count, row)

    async def threads(self, count: int, make: Callable[[int], tuple[str, ThreadMetadata]]) -> float:
        def row(index: int) -> list[Any]:
            user_id, thread = make(index)
            return [user_id, thread.id, codec.sort_key(thread.created_at), codec.dump_thread(thread)]

        return await self._batches(self._put_thread, count, row)

    async def aclose(self) -> None:
        await self._conn.close()


async def open_seeder(store: UserStore, url: str, concurrency: int, mode: str) -> Seeder:
    """`mode` "api": always the public API; "auto": batches where the backend needs them (Postgres)."""
    if mode == "auto" and urlsplit(url).scheme.startswith("postgres"):
        import psycopg

        from stores.postgres.threads import _PUT_ITEM, _PUT_THREAD

        conn = await psycopg.AsyncConnection.connect(urlsplit(url)._replace(query="").geturl(), autocommit=True)
        return PostgresBatchSeeder(store, concurrency, conn, _PUT_ITEM, _PUT_THREAD)
    return Seeder(store, concurrency)
