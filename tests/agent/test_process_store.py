"""One store per worker process: many concurrent calls share one pool and stay within its size.

The calls go through the real entrypoint with nothing in `ctx.proc.userdata` but the
(fake) LLM: the store comes from STORE_URL. Connections are counted on the server
(pg_stat_activity, CLIENT LIST) by a sampler running while the calls are in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from livekit.agents import AgentSession
from livekit.agents.testing import fake_job_context

from agent import worker
from agent.greeting import UNKNOWN_CALLER
from agent.process_store import _holders
from memory import identity_to_uuid
from memory.settings import Settings, get_settings
from stores import UserStore, open_store
from stores.postgres.config import APPLICATION_NAME
from tests.agent.helpers import TEXT_TURNS, assistant_replies, eventually, message_text, system_texts, until
from tests.fakes.mock_room import make_mock_room
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fixtures.postgres_servers import PostgresServer
from tests.fixtures.redis_servers import DurableRedisServer, RedisServer

CALLS = 150
POOL_MAX = 10  # the Postgres default (`pool_max`)
REDIS_MAX = 10  # `max_connections` in the Redis URL
OUR_LOGGERS = ("memory_agent", "stores", "agent", "api")


@contextlib.asynccontextmanager
async def worker_call(identity: str, job_id: str, scripted: ScriptedLLM) -> AsyncIterator[AgentSession]:
    """One call through `agent.worker.entrypoint` with no store supplied; hangs up on exit."""
    with fake_job_context(room=make_mock_room(identity, f"room-{job_id}"), job_id=job_id) as ctx:
        ctx.proc.userdata.update(llm=scripted, session_options={"vad": None, "turn_handling": TEXT_TURNS})
        await asyncio.wait_for(worker.entrypoint(ctx), 120)
        session: AgentSession = ctx.primary_session
        try:
            await until(lambda: bool(assistant_replies(session)), within=120, what="the greeting")
            yield session
        finally:
            await session.aclose()
            for callback in list(ctx._shutdown_callbacks):
                await callback("call over")


class PeakSampler:
    """Polls a connection count in the background and keeps the highest value seen."""

    def __init__(self, count: Callable[[], Awaitable[int]]) -> None:
        self._count = count
        self.peak = 0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, await self._count())
            self.samples += 1
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> PeakSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def run_concurrent_calls(count: int) -> list[tuple[str, ScriptedLLM, list[str]]]:
    """`count` calls at once; each is greeted, waits until all are, takes one turn, hangs up."""
    everyone_greeted = asyncio.Barrier(count)

    async def one(n: int) -> tuple[str, ScriptedLLM, list[str]]:
        identity = f"caller.{n}@example.com"
        scripted = ScriptedLLM([[f"Hello caller {n}!"], [f"Noted, caller {n}."]])
        async with worker_call(identity, f"job-{n}", scripted) as session:
            await everyone_greeted.wait()
            await session.run(user_input=f"I am caller {n}")
            replies = assistant_replies(session)
        return identity, scripted, replies

    return await asyncio.gather(*(one(n) for n in range(count)))


async def check_every_call_stored(url: str, calls: list[tuple[str, ScriptedLLM, list[str]]]) -> None:
    async with await open_store(url) as store:
        for n, (identity, _, replies) in enumerate(calls):
            assert replies == [f"Hello caller {n}!", f"Noted, caller {n}."]
            user = identity_to_uuid(identity)
            profile = await store.profiles.get(user)
            assert profile is not None and profile.identity == identity
            assert await _transcript(store, user) == [f"Hello caller {n}!", f"I am caller {n}", f"Noted, caller {n}."]


async def _transcript(store: UserStore, user: str) -> list[str]:
    context = {"user_id": user}
    threads = (await store.threads.load_threads(10, None, "asc", context)).data
    assert len(threads) == 1
    items = (await store.threads.load_thread_items(threads[0].id, None, 10, "asc", context)).data
    return [message_text(item) for item in items]


def use_store_url(monkeypatch: pytest.MonkeyPatch, url: str, **env: str) -> None:
    monkeypatch.setenv("STORE_URL", url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.mark.slow
async def test_150_calls_on_postgres_share_one_pool(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="memory_agent")
    database = postgres_server.create_database("process_store")
    try:
        url = postgres_server.url(database)
        await (await open_store(url, settings=Settings(store_url=url))).aclose()  # worker start-up
        use_store_url(monkeypatch, url)

        async with await psycopg.AsyncConnection.connect(postgres_server.admin_url, autocommit=True) as admin:

            async def store_connections() -> int:
                cursor = await admin.execute(
                    "select count(*) from pg_stat_activity where datname = %s and application_name = %s",
                    [database, APPLICATION_NAME],
                )
                row = await cursor.fetchone()
                return int(row[0]) if row else 0

            async with PeakSampler(store_connections) as sampler:
                calls = await run_concurrent_calls(CALLS)
            assert sampler.samples > 10
            assert 0 < sampler.peak <= POOL_MAX, f"{sampler.peak} server connections for {CALLS} calls"
            # the last call out closed the store: its connections are gone
            await eventually(lambda: _is_zero(store_connections), within=10, what="the store's connections to close")
        assert not _holders.get(asyncio.get_running_loop())
        await check_every_call_stored(url, calls)
        assert not our_errors(caplog), caplog.text[-3000:]
    finally:
        postgres_server.drop_database(database)


@pytest.mark.slow
async def test_150_calls_on_redis_stay_within_the_pool(
    fresh_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="memory_agent")
    url = f"{fresh_redis_server.url}?max_connections={REDIS_MAX}"
    use_store_url(monkeypatch, url)
    async with aioredis.Redis(host="127.0.0.1", port=fresh_redis_server.port, decode_responses=True) as admin:

        async def store_connections() -> int:
            clients: list[dict[str, Any]] = await admin.client_list()
            return sum(1 for client in clients if client.get("name") == "memory-agent")

        async with PeakSampler(store_connections) as sampler:
            calls = await run_concurrent_calls(CALLS)
        assert sampler.samples > 10
        assert 0 < sampler.peak <= REDIS_MAX, f"{sampler.peak} client connections for {CALLS} calls"
        await eventually(lambda: _is_zero(store_connections), within=10, what="the store's connections to close")
    await check_every_call_stored(url, calls)
    assert not our_errors(caplog), caplog.text[-3000:]


def our_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """ERROR records of our own loggers (a call failed, a write was lost); the framework's are not ours to judge."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(OUR_LOGGERS)]


async def _is_zero(count: Callable[[], Awaitable[int]]) -> bool:
    return await count() == 0


@pytest.mark.slow
async def test_store_down_at_call_start_is_opened_in_the_background(
    durable_redis: DurableRedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call cannot open the store: it is greeted neutrally, and everything lands once the store is up."""
    use_store_url(monkeypatch, durable_redis.url, STORE_CONNECT_TIMEOUT="1")
    await durable_redis.astop()
    identity = "early.caller@example.com"
    scripted = ScriptedLLM([["Hello! How can I help?"], ["Sure."]])
    async with worker_call(identity, "job-early", scripted) as session:
        assert system_texts(scripted.requests[0])[-1] == UNKNOWN_CALLER
        await durable_redis.astart()
        await session.run(user_input="hi there")
        holder = next(iter(_holders[asyncio.get_running_loop()].values()))
        await until(lambda: holder.is_open, within=15, what="the store to open in the background")
        assert holder.open_attempts > 1
    async with await open_store(durable_redis.url) as store:
        user = identity_to_uuid(identity)
        profile = await store.profiles.get(user)
        assert profile is not None and profile.identity == identity
        assert await _transcript(store, user) == ["Hello! How can I help?", "hi there", "Sure."]
