"""Redis is SIGKILLed in the middle of 50 concurrent calls and comes back on the same port 2 s later.

Why a durable Redis (appendonly, appendfsync always): the agent's write-behind
drops a write from its queue once Redis acknowledged it, so after a restart of a
Redis *without* persistence everything stored before the kill is gone and nothing
is left to resend it. That is a property of the deployment, not of the agent: a
production Redis that holds user data runs with AOF (or is a managed service with
replication). With AOF and fsync on every write, "acknowledged by Redis" means
"survives a SIGKILL", and the agent's promise becomes testable end to end: every
memory the model was told was remembered and every message of every call is in
the store exactly once afterwards (retries after a connection reset resend the
same ids, so nothing is duplicated).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

import pytest

from memory.settings import get_settings
from stores import open_store
from tests.faults.calls import CallRecord, assert_stored_exactly_once, expected_messages, scripted_call
from tests.fixtures.redis_servers import DurableRedisServer

SESSIONS = 50
TURNS = 8
USER_PAUSE = 0.35  # the caller speaks between turns: sessions run through the outage, not past it
DOWN_SECONDS = 2.0


async def _sigkill(server: DurableRedisServer) -> None:
    """Kill -9, no shutdown, no final AOF rewrite: a crash."""
    process = server.process
    assert process is not None and process.poll() is None
    process.kill()
    await asyncio.to_thread(process.wait)


@pytest.mark.slow
async def test_redis_sigkill_during_50_calls(
    durable_redis: DurableRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="memory_agent")
    first_turn_done = 0
    all_started = asyncio.Event()

    async def after_turn(turn: int) -> None:
        nonlocal first_turn_done
        if turn == 0:
            first_turn_done += 1
            if first_turn_done == SESSIONS:
                all_started.set()
        await asyncio.sleep(USER_PAUSE)

    async def outage() -> tuple[float, float]:
        await all_started.wait()  # every call is up: profile ensured, memories loaded, transcript thread saved
        killed = time.time()
        await _sigkill(durable_redis)
        await asyncio.sleep(DOWN_SECONDS)
        await durable_redis.astart()  # same port, replays the append-only file
        return killed, time.time()

    async with await open_store(durable_redis.url) as store:
        tags = [f"k{n}" for n in range(SESSIONS)]
        calls = [scripted_call(store, f"{tag}@outage.example.com", tag, TURNS, after_turn=after_turn) for tag in tags]
        fault = asyncio.create_task(outage())
        try:
            records: list[CallRecord] = list(await asyncio.gather(*calls))
            killed, back = await fault
        finally:
            fault.cancel()

        # the sessions went on through the outage: every caller heard every reply, in order
        for record in records:
            assert record.messages == expected_messages(record.tag, TURNS)
            assert len(record.memories) == TURNS  # every remember was confirmed to the model
        # replies were not held up by the dead store: many turns both started and ended while it was down,
        # and the only memory work on the reply path (recall from the session cache) stayed within its budget
        # (counted by when a reply ended: with 50 calls on 2 cores a turn takes about as long as the outage,
        # so few turns can also *start* inside it; a reply blocked on Redis could not end before it returned)
        down = [end - start for rec in records for start, end in rec.turn_seconds if killed <= end < back]
        up = [end - start for rec in records for start, end in rec.turn_seconds if end < killed or start > back]
        timing = (
            f"{len(down)} replies ended during the outage, median {statistics.median(down or [0]):.2f}s "
            f"vs {statistics.median(up):.2f}s with Redis up"
        )
        assert len(down) >= SESSIONS // 2, f"replies waited for Redis to come back: {timing}"
        assert all(rec.late_recalls == 0 for rec in records)
        budget = get_settings().recall_budget_ms / 1000
        assert max(rec.max_recall_overhead for rec in records) < budget
        # the outage was felt by the write-behind (and survived): retries were logged, nothing given up
        messages = [r.getMessage() for r in caplog.records]
        assert any("retrying" in m for m in messages)
        assert not any("could NOT be stored" in m or "dropping" in m for m in messages)

    # a fresh connection reads the store as the next session would
    async with await open_store(durable_redis.url) as store:
        await assert_stored_exactly_once(store, records)
