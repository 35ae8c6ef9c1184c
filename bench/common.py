"""Timing helpers and raw-driver baselines shared by the benchmark scripts.

Every figure a benchmark prints is a ratio to something measured in the same run,
so the numbers hold on a noisy machine.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

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


async def raw_round_trip(url: str, repeat: int) -> Timing | None:
    """One raw driver round trip (`PING` / `SELECT 1`) with the same driver the backend uses."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return None
    if scheme == "sqlite":
        import aiosqlite

        async with aiosqlite.connect(url.removeprefix("sqlite:///")) as db:

            async def sqlite_select() -> None:
                async with db.execute("select 1") as cursor:
                    await cursor.fetchone()

            return await measure(sqlite_select, repeat)
    if scheme.startswith("redis"):
        from redis.asyncio import Redis
        from redis.asyncio.cluster import RedisCluster

        client: Redis | RedisCluster = (
            RedisCluster.from_url(url.replace("+cluster", "", 1)) if "cluster" in scheme else Redis.from_url(url)
        )
        try:
            return await measure(client.ping, repeat)
        finally:
            await client.aclose()
    import psycopg

    async with await psycopg.AsyncConnection.connect(url.split("?")[0], autocommit=True) as conn:

        async def select_one() -> None:
            await (await conn.execute("select 1")).fetchone()

        return await measure(select_one, repeat)
