"""Timing helpers and raw-driver baselines shared by the benchmark scripts.

Every figure a benchmark prints is a ratio to something measured in the same run,
so the numbers hold on a noisy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chatkit.types import AssistantMessageContent, AssistantMessageItem

if TYPE_CHECKING:
    from stores import UserStore

DEFAULT_URLS = {
    "memory": "memory://",
    "sqlite": "sqlite:///./data/bench.db",
    "redis": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "redis_cluster": os.environ.get("BENCH_REDIS_CLUSTER_URL", ""),
    "postgres": os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/memory_agent_bench"),
}


@dataclass(frozen=True)
class Timing:
    """Latency samples in milliseconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


async def measure(operation: Callable[[], Awaitable[object]], repeat: int, warmup: int = 10) -> Timing:
    """Run `operation` `warmup` times untimed, then `repeat` times timed one after another."""
    for _ in range(warmup):
        await operation()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await operation()
        samples.append((time.perf_counter() - started) * 1000)
    return Timing(samples)


def run_main(main: Coroutine[Any, Any, int]) -> int:
    """`asyncio.run` where SIGTERM cancels like Ctrl-C, so cleanup (scratch data, servers) still runs."""

    async def guarded() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None

        def on_sigterm() -> None:  # the first SIGTERM cleans up; a second one kills at once
            task.cancel()
            loop.remove_signal_handler(signal.SIGTERM)

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        return await main

    try:
        return asyncio.run(guarded())
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted; benchmark data and servers were cleaned up", file=sys.stderr)
        return 130


async def measure_interleaved(
    operations: dict[str, Callable[[], Awaitable[object]]], repeat: int, rounds: int = 5
) -> dict[str, Timing]:
    """`measure` each operation in `rounds` alternating blocks, so machine-load drift hits all alike."""
    samples: dict[str, list[float]] = {label: [] for label in operations}
    per_round = max(1, repeat // rounds)
    for round_index in range(rounds):
        for label, operation in operations.items():
            timing = await measure(operation, per_round, warmup=10 if round_index == 0 else 2)
            samples[label].extend(timing.samples)
    return {label: Timing(values) for label, values in samples.items()}


async def run_concurrently(count: int, concurrency: int, job: Callable[[int], Awaitable[object]]) -> float:
    """Run `job(0..count-1)` on `concurrency` workers; return the wall time in seconds."""
    indexes = itertools.count()

    async def worker() -> None:
        while (index := next(indexes)) < count:
            await job(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return time.perf_counter() - started


def assistant_message(thread_id: str, index: int, base: datetime, text: str | None = None) -> AssistantMessageItem:
    """A realistic assistant reply, `index` microseconds after `base` (so the order is known)."""
    return AssistantMessageItem(
        id=f"msg_{uuid.uuid4().hex}",
        thread_id=thread_id,
        created_at=base + timedelta(microseconds=index),
        content=[AssistantMessageContent(text=text or f"reply number {index} about the weather and tea")],
    )


async def open_bench_store(name: str, url: str) -> UserStore:
    """Open a benchmark store, creating the Postgres database or the SQLite directory first."""
    from stores import open_store

    if name == "postgres":
        await ensure_postgres_database(url)
    if urlsplit(url).scheme == "sqlite":
        parent = Path(url.removeprefix("sqlite:///")).parent
        await asyncio.to_thread(parent.mkdir, parents=True, exist_ok=True)
    return await open_store(url)


async def ensure_postgres_database(url: str) -> None:
    """Create the benchmark database if it does not exist (connects to the `postgres` db)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        found = await (await conn.execute("select 1 from pg_database where datname = %s", (name,))).fetchone()
        if not found:
            await conn.execute(f'create database "{name}"')  # name comes from our own config


def _admin_url(url: str) -> tuple[str, str]:
    """The `postgres` maintenance database URL (no store query options) and the database name."""
    parts = urlsplit(url)
    return parts._replace(path="/postgres", query="").geturl(), parts.path.lstrip("/")


async def recreate_postgres_database(url: str) -> None:
    """Drop (if present) and create the database of `url`, so a benchmark starts from an empty store."""
    import psycopg

    admin, name = _admin_url(url)
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'drop database if exists "{name}" with (force)')  # name comes from our own config
        await conn.execute(f'create database "{name}"')


async def drop_postgres_database(url: str) -> None:
    import psycopg

    admin, name = _admin_url(url)
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'drop database if exists "{name}" with (force)')


async def raw_round_trip(url: str, repeat: int) -> Timing | None:
    """One raw driver round trip (`PING` / `SELECT 1`) with the same driver the backend uses."""
    async with raw_operations(url) as operations:
        if not operations:
            return None
        return await measure(operations["raw round trip"], repeat)


@contextlib.asynccontextmanager
async def raw_operations(url: str) -> AsyncIterator[dict[str, Callable[[], Awaitable[object]]]]:
    """The raw-driver floors for `url`, as operations to time beside the store's.

    Always `raw round trip` (`PING` / `SELECT 1` on the driver the backend uses); for
    Postgres also `raw durable insert` (one autocommitted single-row INSERT into a plain,
    WAL-logged table): the cost of a commit's WAL flush on this server, which no store
    write can beat.
    Nothing for the in-process store.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        yield {}
        return
    if scheme == "sqlite":
        import aiosqlite

        async with aiosqlite.connect(url.removeprefix("sqlite:///")) as db:

            async def sqlite_select() -> None:
                async with db.execute("select 1") as cursor:
                    await cursor.fetchone()

            yield {"raw round trip": sqlite_select}
        return
    if scheme.startswith("redis"):
        from redis.asyncio import Redis
        from redis.asyncio.cluster import RedisCluster

        client: Redis | RedisCluster = (
            RedisCluster.from_url(url.replace("+cluster", "", 1)) if "cluster" in scheme else Redis.from_url(url)
        )
        try:
            yield {"raw round trip": client.ping}
        finally:
            await client.aclose()
        return
    import psycopg

    async with await psycopg.AsyncConnection.connect(url.split("?")[0], autocommit=True) as conn:
        table = f"bench_floor_{uuid.uuid4().hex[:12]}"  # a temporary table would skip the WAL
        await conn.execute(f"create table {table} (id bigint primary key, data text)")
        numbers = itertools.count()

        async def select_one() -> None:
            await (await conn.execute("select 1")).fetchone()

        async def durable_insert() -> None:
            await conn.execute(f"insert into {table} values (%s, 'x')", [next(numbers)])

        try:
            yield {"raw round trip": select_one, "raw durable insert": durable_insert}
        finally:
            await conn.execute(f"drop table {table}")
