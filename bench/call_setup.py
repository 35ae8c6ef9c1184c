"""Call set-up: participant joined -> the greeting's LLM request, with a store per call vs one per process.

    .venv/bin/python -m bench.call_setup [--backends sqlite,redis,postgres] [--concurrency 1,100]
                                         [--samples 100]

Every call runs the real `agent.worker.run_call` under LiveKit's `fake_job_context`
with a mock room (the caller is already in the room, so "participant joined" is the
moment the job starts) and a scripted LLM that records when the greeting request
reaches it. What lies between is the store work of call set-up: open the store (or
not), ensure the caller's profile, load their memories. Every caller is new (a first
login), and calls hang up right after the greeting.

Two modes, measured in the same run:
- `per-call`: the behaviour before the shared store: each call opens its own store
  (and so its own connection pool) from STORE_URL, and closes it when it ends.
- `shared`: the current entrypoint: calls of one process share the process store
  (`agent.process_store`); the first call opens it, the last one out closes it.
With `--concurrency 1,100`, calls run one at a time, then in waves of 100 at once.
A wave or a single call is a fresh process as LiveKit runs it: the process store is
opened by its first call. `failed` counts calls that raised (e.g. Postgres' "too
many clients"), `neutral` calls greeted without their profile because the store did
not answer within the greeting's 3 s wait; `peak server connections` is what the
server saw from the store(s) while the calls ran (pg_stat_activity, CLIENT LIST). Backends: sqlite, redis,
postgres (URLs of bench.common: BENCH_REDIS_URL, BENCH_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from livekit.agents import AgentSession
from livekit.agents.testing import fake_job_context

from agent import worker
from agent.greeting import FIRST_CALL
from bench.common import DEFAULT_URLS, ensure_postgres_database, percentile, run_main
from memory.settings import Settings
from stores import UserStore, open_store
from stores.errors import redact_url
from stores.postgres.config import APPLICATION_NAME
from tests.fakes.mock_room import make_mock_room
from tests.fakes.scripted_llm import ScriptedLLM

MODES = ("per-call", "shared")
GREETING_WAIT_S = 60.0


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0  # the call raised (e.g. Postgres "too many clients") or got no greeting
    neutral: int = 0  # greeted without the profile: the store did not answer within the greeting's wait
    peak_connections: int = 0  # server connections of the store(s), sampled every 10 ms during the waves
    wall_s: float = 0.0


async def one_call(settings: Settings, mode: str, result: Result) -> None:
    """One call from job start to the greeting request; hangs up afterwards."""
    identity = f"setup.{uuid.uuid4().hex[:12]}@example.com"
    scripted = ScriptedLLM([["Hello!"]])
    own_store: UserStore | None = None
    with fake_job_context(room=make_mock_room(identity, f"room-{identity}"), job_id=f"job-{identity}") as ctx:
        ctx.proc.userdata.update(llm=scripted, session_options={"vad": None, "turn_handling": {"turn_detection": None}})
        session: AgentSession | None = None
        started = time.perf_counter()
        try:
            if mode == "per-call":  # as before: the call opened (and later closed) a store of its own
                own_store = await open_store(settings.store_url, settings=settings)
                ctx.proc.userdata["store"] = own_store
            session = await worker.run_call(ctx, settings)
            deadline = time.monotonic() + GREETING_WAIT_S
            while not scripted.request_times and time.monotonic() < deadline:  # noqa: ASYNC110 - nothing to await
                await asyncio.sleep(0.001)
            if not scripted.request_times:
                raise TimeoutError("no greeting")
            result.latencies_ms.append((scripted.request_times[0] - started) * 1000)
            items = scripted.requests[0].items
            system = [i.text_content for i in items if i.type == "message" and i.role == "system"]
            if not system or system[-1] != FIRST_CALL:
                result.neutral += 1
        except Exception as exc:
            result.failed += 1
            logging.getLogger("bench.call_setup").error("call failed: %s", exc)
        finally:
            if session is not None:
                await session.aclose()
            for callback in list(ctx._shutdown_callbacks):
                await callback("call over")
            if own_store is not None:
                await own_store.aclose()


async def run_modes(settings: Settings, concurrency: int, samples: int) -> dict[str, Result]:
    """Both modes, wave by wave in alternation, so machine-load drift hits both alike."""
    results = {mode: Result() for mode in MODES}
    async with connection_counter(settings.store_url) as count:
        for _ in range(max(1, samples // concurrency)):
            for mode in MODES:
                result = results[mode]
                started = time.perf_counter()
                wave = asyncio.gather(*(one_call(settings, mode, result) for _ in range(concurrency)))
                while not wave.done():
                    result.peak_connections = max(result.peak_connections, await count())
                    await asyncio.wait({wave}, timeout=0.01)
                await wave
                result.wall_s += time.perf_counter() - started
    return results


@contextlib.asynccontextmanager
async def connection_counter(url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """Counts the store's server connections: pg_stat_activity, CLIENT LIST; SQLite: 0 (no server)."""
    scheme = url.split("://", 1)[0]
    if scheme.startswith("postgres"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(url.split("?")[0], autocommit=True) as admin:

            async def pg_count() -> int:
                cursor = await admin.execute(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and application_name = %s",
                    [APPLICATION_NAME],
                )
                row = await cursor.fetchone()
                return int(row[0]) if row else 0

            yield pg_count
    elif scheme.startswith("redis") and "cluster" not in scheme:
        import redis.asyncio as aioredis

        async with aioredis.Redis.from_url(url.split("?")[0], decode_responses=True) as client:

            async def redis_count() -> int:
                return sum(1 for c in await client.client_list() if c.get("name") == "memory-agent")

            yield redis_count
    else:

        async def none() -> int:
            return 0

        yield none


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,redis,postgres")
    parser.add_argument("--concurrency", default="1,100", help="comma-separated concurrent calls per process")
    parser.add_argument("--samples", type=int, default=100, help="calls per backend, mode and concurrency")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    backends = [b for b in args.backends.split(",") if b]
    levels = [int(c) for c in args.concurrency.split(",") if c]

    print("# Call set-up: participant joined -> greeting LLM request\n")
    print(f"{args.samples} new callers per row; `per-call` = a store per call (before), `shared` = one per process.\n")
    print(
        "| backend | concurrent calls | mode | p50 ms | p95 ms | failed | neutral | peak server connections "
        "| p95 shared / per-call |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for backend in backends:
        url = DEFAULT_URLS[backend]
        if backend == "postgres":
            await ensure_postgres_database(url)
        if backend == "sqlite":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # the worker applies migrations at start-up; calls open the store without them
        await (await open_store(url)).aclose()
        settings = Settings(store_url=url, store_migrate_on_open=False)
        for concurrency in levels:
            results = await run_modes(settings, concurrency, args.samples)
            p95 = {mode: _p(r.latencies_ms, 95) for mode, r in results.items()}
            for mode, result in results.items():
                samples = result.latencies_ms
                ratio = f"{p95['shared'] / p95['per-call']:.2f}" if mode == "shared" and p95["per-call"] else ""
                print(
                    f"| {backend} | {concurrency} | {mode} | "
                    f"{_p(samples, 50):.1f} | {p95[mode]:.1f} | "
                    f"{result.failed} | {result.neutral} | {result.peak_connections or '-'} | {ratio} |"
                )
        print(f"\n<!-- {backend}: {redact_url(url)} -->", file=sys.stderr)
    return 0


def _p(samples: list[float], pct: float) -> float:
    return percentile(samples, pct) if samples else float("nan")


if __name__ == "__main__":
    sys.exit(run_main(main()))
