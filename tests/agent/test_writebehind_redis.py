"""Write-behind under failure: the call's Redis is stopped mid-call and restarted.

The replies never wait for the store, and afterwards every transcript message (and
every memory) is stored exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from memory import identity_to_uuid
from stores import open_store
from tests.agent.helpers import assistant_replies, call, fake_call, message_text
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fixtures.redis_servers import DurableRedisServer

IDENTITY = "outage-caller@example.com"


@pytest.mark.slow
async def test_redis_outage_mid_call_loses_and_duplicates_nothing(
    durable_redis: DurableRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="memory_agent")
    user = identity_to_uuid(IDENTITY)
    turns = [f"turn {n}: my number is {n}" for n in range(9)]
    steps: list = [["Hello!"]]
    for n in range(len(turns)):
        steps += [[call("remember", category="fact", key=f"number {n}", value=str(n))], [f"Reply {n}."]]
    scripted = ScriptedLLM(steps)

    async with await open_store(durable_redis.url) as store:
        async with fake_call(store, scripted, IDENTITY, room_name="outage-room", job_id="job-outage") as session:
            durations = []
            for n, text in enumerate(turns):
                if n == 3:
                    await durable_redis.astop()  # the store goes away mid-call
                if n == 6:
                    # stay down until write-behind itself saw writes fail: since redis 8.2 the driver's own
                    # retries (async Retry, up to ~1 s) absorb a shorter outage, and this test is about a longer one
                    await _until_outage_felt(caplog)
                    await durable_redis.astart()  # ... and comes back
                started = time.perf_counter()
                await session.run(user_input=text)
                durations.append(time.perf_counter() - started)

        assert assistant_replies(session) == ["Hello!", *(f"Reply {n}." for n in range(len(turns)))]
        # replies during the outage were not held up by the store (retries back off up to 2 s)
        assert max(durations[3:6]) < 1.5, durations
        assert _outage_felt(caplog)  # transcript and memory writes both failed and were retried

        context = {"user_id": user}
        [thread] = (await store.threads.load_threads(100, None, "asc", context)).data
        items = (await store.threads.load_thread_items(thread.id, None, 100, "asc", context)).data
        texts = [message_text(item) for item in items]
        expected = ["Hello!"]
        for n, text in enumerate(turns):
            expected += [text, f"Reply {n}."]
        assert texts == expected  # every message, in order, exactly once
        assert len({item.id for item in items}) == len(items)
        remembered = {m.key: m.value for m in await store.memories.list(user)}
        assert remembered == {f"number_{n}": str(n) for n in range(len(turns))}


def _outage_felt(caplog: pytest.LogCaptureFixture) -> bool:
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage() and "retrying" in r.getMessage()]
    return any("message" in m for m in failed) and any("remember" in m for m in failed)


async def _until_outage_felt(caplog: pytest.LogCaptureFixture) -> None:
    """Poll the captured log (no event to wait on) for at most 20 s."""
    deadline = time.monotonic() + 20.0
    while not _outage_felt(caplog) and time.monotonic() < deadline:  # noqa: ASYNC110 - log records are not awaitable
        await asyncio.sleep(0.05)
