"""Where a store read's time goes: network floor, server, driver and our Python.

    .venv/bin/python -m bench.store_breakdown [--backends redis,postgres] [--repeat 500]

For a thread load and a 20-item page after a cursor it times, interleaved in one run:
- `raw round trip`: `PING` / `SELECT 1` on the bare driver (the floor of any call);
- `driver only`: exactly the wire traffic the store sends (for Postgres one Query text
  `EXECUTE`-ing the prepared prelude (statement_timeout, role, claims) and the prepared
  query; for Redis the EVALSHA of the page script) on the bare driver, with no decoding
  into models;
- `decode only`: turning the rows into ChatKit models, no I/O at all;
- `store`: the store call, everything included.
It also reads the server's own time per call (Postgres: EXPLAIN ANALYZE planning +
execution of the query as `authenticated`; Redis: INFO commandstats usec_per_call of
EVALSHA), so `driver only - raw round trip - server` is what the driver adds.
URLs as in bench.store_ops. Results and their reading: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from chatkit.types import ThreadMetadata

from bench.common import DEFAULT_URLS, Timing, assistant_message, ensure_postgres_database, measure_interleaved
from stores import UserStore, codec, open_store
from stores.errors import redact_url
from stores.postgres.db import _BIND_SQL, _TIMEOUT_AND_BIND_SQL, _last_rows
from stores.postgres.prepared import PreparedOnConnections

Operations = dict[str, Callable[[], Awaitable[object]]]


async def _seed(store: UserStore, user_id: str) -> tuple[str, str]:
    """One thread of 60 items; returns the thread id and the cursor after its first 20 (newest first)."""
    context = {"user_id": user_id}
    thread_id = f"thr_{uuid.uuid4().hex}"
    base = datetime.now()
    await store.threads.save_thread(ThreadMetadata(id=thread_id, created_at=base), context)
    for index in range(60):
        await store.threads.add_thread_item(thread_id, assistant_message(thread_id, index, base), context)
    page = await store.threads.load_thread_items(thread_id, None, 20, "desc", context)
    assert page.after is not None
    return thread_id, page.after


async def _postgres(store: Any, url: str, user_id: str, thread_id: str, after: str, repeat: int) -> None:
    import psycopg

    from stores.postgres.threads import _GET_THREAD, _PAGE_ITEMS

    claims = f'{{"sub": "{user_id}", "role": "authenticated"}}'
    page_sql = _PAGE_ITEMS[True, True]
    page_params = {"user": user_id, "thread": thread_id, "after": after, "limit": 21}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        prepared = PreparedOnConnections()
        cursor = psycopg.AsyncClientCursor(conn)

        async def sent(query: str, params: Any) -> list[Any]:
            script = await prepared.script(cursor, [(_TIMEOUT_AND_BIND_SQL, ["5000ms", claims]), (query, params)])
            return await _last_rows(cursor, script)

        rows = [row[0] for row in await sent(page_sql, page_params)]
        thread_row = (await sent(_GET_THREAD, [user_id, thread_id]))[0][0]
        operations: Operations = {
            "raw round trip": lambda: conn.execute("select 1"),
            "load_thread: driver only": lambda: sent(_GET_THREAD, [user_id, thread_id]),
            "load_thread: decode only": _async(lambda: codec.load_thread(thread_row)),
            "load_thread: store": lambda: store.threads.load_thread(thread_id, {"user_id": user_id}),
            "page after cursor: driver only": lambda: sent(page_sql, page_params),
            "page after cursor: decode only": _async(lambda: [codec.load_item(row) for row in rows]),
            "page after cursor: store": lambda: store.threads.load_thread_items(
                thread_id, after, 20, "desc", {"user_id": user_id}
            ),
        }
        timings = await measure_interleaved(operations, repeat)
        server = {}
        for label, query, params in (
            ("load_thread", _GET_THREAD, [user_id, thread_id]),
            ("page after cursor", page_sql, page_params),
        ):
            server[label] = await _explain(conn, claims, query, params)
    _report("postgres", url, timings, server)


async def _explain(conn: Any, claims: str, query: str, params: Any) -> float:
    """Server-side planning + execution ms of `query` as `authenticated` (median of 50 EXPLAIN ANALYZE)."""
    samples = []
    for _ in range(50):
        async with conn.transaction():
            await conn.execute(_BIND_SQL, [claims])
            cursor = await conn.execute("explain (analyze, format json) " + query, params)
            plan = (await cursor.fetchone())[0][0]
            samples.append(plan["Planning Time"] + plan["Execution Time"])
    return Timing(samples).median


async def _redis(store: Any, url: str, user_id: str, thread_id: str, after: str, repeat: int) -> None:
    from redis.asyncio import Redis

    from stores.redis import scripts
    from stores.redis.keys import UserKeys

    keys = UserKeys(user_id)
    page_keys = [
        keys.thread(thread_id),
        keys.items(thread_id),
        keys.item_positions(thread_id),
        keys.item_data(thread_id),
    ]
    client = Redis.from_url(url, decode_responses=True)
    try:
        page = client.register_script(scripts.PAGE_ITEMS)
        rows = [str(row) for row in (await page(keys=page_keys, args=[after, 20, "1"]))[1:]]
        thread_row = await client.hget(keys.thread(thread_id), "meta")
        operations: Operations = {
            "raw round trip": client.ping,
            "load_thread: driver only": lambda: client.hget(keys.thread(thread_id), "meta"),
            "load_thread: decode only": _async(lambda: codec.load_thread(str(thread_row))),
            "load_thread: store": lambda: store.threads.load_thread(thread_id, {"user_id": user_id}),
            "page after cursor: driver only": lambda: page(keys=page_keys, args=[after, 20, "1"]),
            "page after cursor: decode only": _async(lambda: [codec.load_item(row) for row in rows]),
            "page after cursor: store": lambda: store.threads.load_thread_items(
                thread_id, after, 20, "desc", {"user_id": user_id}
            ),
        }
        await client.config_resetstat()
        timings = await measure_interleaved(operations, repeat)
        stats = await client.info("commandstats")
        server = {
            "load_thread": float(stats.get("cmdstat_hget", {}).get("usec_per_call", 0.0)) / 1000,
            "page after cursor": float(stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0)) / 1000,
        }
    finally:
        await client.aclose()
    _report("redis", url, timings, server)


def _async(function: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        return function()

    return run


def _report(name: str, url: str, timings: dict[str, Timing], server: dict[str, float]) -> None:
    floor = timings["raw round trip"].median
    print(f"\n## {name} ({redact_url(url)}; raw round trip median {floor:.3f} ms)")
    print("| operation | store ms | / round trip | driver only ms | server ms | decode ms | rest (our Python) ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label in ("load_thread", "page after cursor"):
        total = timings[f"{label}: store"].median
        driver = timings[f"{label}: driver only"].median
        decode = timings[f"{label}: decode only"].median
        print(
            f"| {label} | {total:.3f} | {total / floor:.2f}x | {driver:.3f} | {server[label]:.3f} | "
            f"{decode:.3f} | {total - driver - decode:.3f} |"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="redis,postgres")
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args()
    print(f"# Where the time goes, {datetime.now():%Y-%m-%d %H:%M}, {args.repeat} runs each")
    for name in args.backends.split(","):
        url = DEFAULT_URLS[name]
        if name == "postgres":
            await ensure_postgres_database(url)
        store = await open_store(url)
        user_id = str(uuid.uuid4())
        try:
            thread_id, after = await _seed(store, user_id)
            bench = _postgres if name == "postgres" else _redis
            await bench(store, url, user_id, thread_id, after, args.repeat)
        finally:
            await store.forget_user(user_id)
            await store.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
