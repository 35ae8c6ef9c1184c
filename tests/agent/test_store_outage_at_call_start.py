"""A store that stops answering before a call starts must not cost the caller the call."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.greeting import UNKNOWN_CALLER
from memory import identity_to_uuid
from memory.settings import Settings
from stores import open_store
from tests.agent.helpers import assistant_replies, eventually, fake_call, system_texts
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fixtures.redis_servers import DurableRedisServer

IDENTITY = "outage.caller@example.com"


@pytest.mark.slow
async def test_call_goes_on_when_the_store_is_down_and_the_profile_lands_later(
    durable_redis: DurableRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="memory_agent")
    user = identity_to_uuid(IDENTITY)
    async with await open_store(durable_redis.url, settings=Settings(store_connect_timeout=1.0)) as store:
        await durable_redis.astop()  # the worker's store was fine at start-up, then the server went away
        scripted = ScriptedLLM([["Hello! How can I help?"], ["Sure."]])
        started = asyncio.get_running_loop().time()
        async with fake_call(store, scripted, IDENTITY, job_id="job-outage") as session:
            greeted_after = asyncio.get_running_loop().time() - started
            assert assistant_replies(session) == ["Hello! How can I help?"]
            assert system_texts(scripted.requests[0])[-1] == UNKNOWN_CALLER  # neither "new" nor "welcome back"
            await durable_redis.astart()
            await session.run(user_input="hi there")
        # the queued profile write and the transcript were stored once the server was back
        profile = await store.profiles.get(user)
        assert profile is not None and profile.identity == IDENTITY
        await eventually(lambda: _has_transcript(store, user), within=10, what="the call's transcript after the outage")
    assert greeted_after < 10  # bounded by the profile/memory timeouts, not by the outage
    assert any("not ensured" in record.getMessage() for record in caplog.records)


async def _has_transcript(store: object, user: str) -> bool:
    from stores import UserStore

    assert isinstance(store, UserStore)
    threads = await store.threads.load_threads(10, None, "asc", {"user_id": user})
    if not threads.data:
        return False
    items = await store.threads.load_thread_items(threads.data[0].id, None, 10, "asc", {"user_id": user})
    return len(items.data) >= 3
