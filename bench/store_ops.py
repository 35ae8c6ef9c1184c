"""Median/p95 latency of each store operation per backend, and its ratio to one raw round trip.

    .venv/bin/python -m bench.store_ops [--backends memory,sqlite,redis,postgres] [--repeat 300]

URLs: sqlite in ./data, Redis db 15 on 127.0.0.1:6379 (BENCH_REDIS_URL), Postgres database
memory_agent_bench on 127.0.0.1:5432 (BENCH_POSTGRES_URL, created if missing), and a Redis
Cluster only if BENCH_REDIS_CLUSTER_URL is set. A backend that cannot be reached is reported
and skipped. The store's operations and the raw driver floors (`raw round trip`, and for
Postgres `raw durable insert`: the WAL flush of one commit) are timed interleaved, so
a load change on the machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from chatkit.types import ThreadMetadata

from bench.common import (
    DEFAULT_URLS,
    Timing,
    assistant_message,
    ensure_postgres_database,
    measure_interleaved,
    raw_operations,
)
from stores import UserStore, open_store
from stores.errors import redact_url

READS = (
    "load_thread",
    "load_threads(20)",
    "load_thread_items(20)",
    "load_thread_items(20) after a cursor",
    "memories.search",
    "profiles.ensure",
)
# issue 12's targets where they differ from the defaults (reads <= 2x, writes <= 3x)
TARGETS = {("postgres", "load_thread_items(20) after a cursor"): "<= 2.5x"}


async def _seed(store: UserStore, user_id: str) -> str:
    """One user with 30 threads, 100 items in the last one and 50 memories."""
    context = {"user_id": user_id}
    base = datetime.now()
    thread_id = ""
    for index in range(30):
        thread_id = f"thr_{uuid.uuid4().hex}"
        await store.threads.save_thread(
            ThreadMetadata(id=thread_id, created_at=base + timedelta(seconds=index)), context
        )
    for index in range(100):
        await store.threads.add_thread_item(thread_id, assistant_message(thread_id, index, base), context)
    for index in range(50):
        await store.memories.remember(user_id, "fact", f"fact {index}", f"the user mentioned topic {index} once")
    await store.memories.remember(user_id, "preference", "favourite drink", "green tea")
    await store.profiles.ensure(user_id)
    return thread_id


Row = tuple[str, Timing, Timing | None]


async def bench_backend(name: str, url: str, repeat: int) -> list[Row]:
    """Every operation timed interleaved with the raw driver floors, so load drift hits all alike."""
    if name == "postgres":
        await ensure_postgres_database(url)
    store = await open_store(url)
    try:
        user_id = str(uuid.uuid4())
        context = {"user_id": user_id}
        thread_id = await _seed(store, user_id)
        first_page = await store.threads.load_thread_items(thread_id, None, 20, "desc", context)
        cursor = first_page.after
        counter = iter(range(10**9))
        base = datetime.now()
        operations: dict[str, Callable[[], Awaitable[object]]] = {
            "load_thread": lambda: store.threads.load_thread(thread_id, context),
            "load_threads(20)": lambda: store.threads.load_threads(20, None, "desc", context),
            "load_thread_items(20)": lambda: store.threads.load_thread_items(thread_id, None, 20, "desc", context),
            "load_thread_items(20) after a cursor": lambda: store.threads.load_thread_items(
                thread_id, cursor, 20, "desc", context
            ),
            "add_thread_item": lambda: store.threads.add_thread_item(
                thread_id, assistant_message(thread_id, 1000 + next(counter), base), context
            ),
            "memories.search": lambda: store.memories.search(user_id, "what does the user like to drink"),
            "profiles.ensure": lambda: store.profiles.ensure(user_id),
        }
        async with raw_operations(url) as raw:
            timings = await measure_interleaved({**raw, **operations}, repeat)
        await store.forget_user(user_id)
        baseline = timings.get("raw round trip")
        rows: list[Row] = [(label, timings[label], baseline) for label in operations]
        rows += [(label, timings[label], baseline) for label in raw if label != "raw round trip"]
        return rows
    finally:
        await store.aclose()


def _target(name: str, label: str) -> str:
    if name in ("memory", "sqlite") or label.startswith("raw"):
        return ""
    return TARGETS.get((name.removesuffix("_cluster"), label), "<= 2x" if label in READS else "<= 3x")


def _print_table(name: str, url: str, rows: list[Row]) -> None:
    baseline = rows[0][2]
    base_text = f"raw round trip median {baseline.median:.3f} ms" if baseline else "no driver round trip"
    print(f"\n## {name} ({redact_url(url)}; {base_text})")
    print("| operation | median ms | p95 ms | median / round trip | target |")
    print("|---|---:|---:|---:|---|")
    for label, timing, base in rows:
        ratio = f"{timing.median / base.median:.2f}x" if base else "-"
        print(f"| {label} | {timing.median:.3f} | {timing.p95:.3f} | {ratio} | {_target(name, label)} |")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="memory,sqlite,redis,redis_cluster,postgres")
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    print(f"# Store operations, {datetime.now():%Y-%m-%d %H:%M}, {args.repeat} runs each")
    for name in args.backends.split(","):
        url = DEFAULT_URLS.get(name, "")
        if not url:
            print(f"\n## {name}: skipped (set BENCH_REDIS_CLUSTER_URL to include it)")
            continue
        try:
            rows = await bench_backend(name, url, args.repeat)
        except Exception as exc:  # report and go on with the other backends
            print(f"\n## {name}: skipped, cannot use {redact_url(url)}: {type(exc).__name__}: {exc}")
            continue
        _print_table(name, url, rows)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
