"""Calls keep going while Postgres loses every connection and then restarts; nothing acknowledged is lost.

tests/integration/test_postgres_faults.py covers the store alone (terminated
backends, a stopped server). This runs real calls on top: their write-behind
queues meet a pool whose connections were killed (`pg_terminate_backend`), then a
server that is stopped and started again on the same port (a clean `fast`
shutdown, as a restart or a failover does; the private test cluster runs with
`synchronous_commit=off`, so a crash could legitimately lose the last commits,
which is not what this test is about).
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from memory.settings import Settings
from stores import open_store
from tests.faults.calls import CallRecord, assert_stored_exactly_once, expected_messages, scripted_call
from tests.fixtures.postgres_servers import PostgresServer, terminate_store_connections

SESSIONS = 20
TURNS = 8
USER_PAUSE = 0.3
RECOVERY_SECONDS = 10.0  # the pool must serve again this soon after the server is back


@pytest.mark.slow
async def test_calls_survive_terminated_connections_and_a_server_restart(
    private_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="memory_agent")
    url = private_postgres.url(private_postgres.create_database(), password="pg-pw-not-shown")
    settings = Settings(store_connect_timeout=5)
    started = 0
    all_started = asyncio.Event()

    async def after_turn(turn: int) -> None:
        nonlocal started
        if turn == 0:
            started += 1
            if started == SESSIONS:
                all_started.set()
        await asyncio.sleep(USER_PAUSE)

    async with await open_store(url, settings=settings) as store:
        window: list[float] = []  # when the server was down (time.time())

        async def faults() -> float:
            await all_started.wait()
            assert await terminate_store_connections(private_postgres.url("postgres")) == 0  # other database
            killed = await terminate_store_connections(url)
            assert killed >= 1, "the store had no connection to kill"
            await asyncio.sleep(0.5)
            await asyncio.to_thread(private_postgres.stop)  # fast shutdown: every client is disconnected
            window.append(time.time())
            await asyncio.sleep(1.0)
            await asyncio.to_thread(private_postgres.start)
            window.append(time.time())
            back = time.monotonic()
            while True:  # the same store object (its pool) serves again, without reopening
                try:
                    await store.ping()
                    return time.monotonic() - back
                except Exception:
                    if time.monotonic() - back > RECOVERY_SECONDS:
                        raise
                    await asyncio.sleep(0.1)

        tags = [f"p{n}" for n in range(SESSIONS)]
        calls = [scripted_call(store, f"{tag}@pg.example.com", tag, TURNS, after_turn=after_turn) for tag in tags]
        fault = asyncio.create_task(faults())
        try:
            records: list[CallRecord] = list(await asyncio.gather(*calls))
            recovery = await fault
        finally:
            fault.cancel()

        assert recovery < RECOVERY_SECONDS
        down, up = window
        replied_while_down = [s for rec in records for s, e in rec.turn_seconds if down <= s and e < up]
        assert len(replied_while_down) >= SESSIONS // 2, "calls waited for Postgres instead of replying"
        for record in records:
            assert record.messages == expected_messages(record.tag, TURNS)  # every caller heard every reply
            assert len(record.memories) == TURNS and record.late_recalls == 0
        messages = [r.getMessage() for r in caplog.records]
        assert any("retrying" in m for m in messages), "no write met the outage: the test proved nothing"
        assert not any("could NOT be stored" in m or "dropping" in m for m in messages)
        assert "pg-pw-not-shown" not in caplog.text

    async with await open_store(url, settings=settings) as store:
        await assert_stored_exactly_once(store, records)
