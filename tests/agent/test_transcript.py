"""The voice transcript as a ChatKit thread, and the write-behind queue under it."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime

import pytest
from chatkit.types import AssistantMessageItem, UserMessageItem

from agent.transcript import VoiceTranscript
from agent.writebehind import Write, WriteBehind
from stores import UserStore

USER = "0b6cbd8a-9f3e-5f0c-8a51-5c1d6f1f0a11"
OTHER = "7d1e2f3a-1111-5222-8333-944455556666"


async def _threads(store: UserStore, user_id: str) -> list:
    page = await store.threads.load_threads(100, None, "asc", {"user_id": user_id})
    return page.data


async def _items(store: UserStore, user_id: str, thread_id: str) -> list:
    page = await store.threads.load_thread_items(thread_id, None, 100, "asc", {"user_id": user_id})
    return page.data


async def test_one_thread_per_call_with_every_message_in_order(mem_store: UserStore) -> None:
    transcript = VoiceTranscript(mem_store, USER, "room-7", "job-42", started=datetime(2025, 3, 4, 9, 5))
    said = [
        ("assistant", "Hi! I'm your assistant."),
        ("user", "Hello, I'm Sam."),
        ("assistant", "Nice to meet you, Sam."),
    ]
    for role, text in said:
        assert transcript.add(role, text)  # type: ignore[arg-type]
    assert transcript.add("user", "   ") is None  # empty final transcripts are skipped
    assert await transcript.aclose() == 0

    threads = await _threads(mem_store, USER)
    assert len(threads) == 1
    thread = threads[0]
    assert thread.title == "Voice call 2025-03-04 09:05"
    assert thread.metadata == {"source": "voice", "room": "room-7", "job_id": "job-42"}
    items = await _items(mem_store, USER, thread.id)
    assert [(type(i), i.content[0].text) for i in items] == [
        (AssistantMessageItem, "Hi! I'm your assistant."),
        (UserMessageItem, "Hello, I'm Sam."),
        (AssistantMessageItem, "Nice to meet you, Sam."),
    ]
    assert await _threads(mem_store, OTHER) == []


async def test_default_title_uses_local_time(mem_store: UserStore) -> None:
    transcript = VoiceTranscript(mem_store, USER, "r", "j")
    transcript.add("user", "hi")
    await transcript.aclose()
    [thread] = await _threads(mem_store, USER)
    assert re.fullmatch(r"Voice call \d{4}-\d\d-\d\d \d\d:\d\d", thread.title or "")


async def test_a_silent_call_leaves_no_empty_thread(mem_store: UserStore) -> None:
    transcript = VoiceTranscript(mem_store, USER, "r", "j")
    assert await transcript.aclose() == 0
    assert await _threads(mem_store, USER) == []


def test_rejects_bad_user_and_role(mem_store: UserStore) -> None:
    with pytest.raises(ValueError):
        VoiceTranscript(mem_store, "not a user id!", "r", "j")
    transcript = VoiceTranscript(mem_store, USER, "r", "j")
    with pytest.raises(ValueError, match="role"):
        transcript.add("system", "x")  # type: ignore[arg-type]


class _Flaky:
    """A write target that fails its first `failures` calls (counts every attempt)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.applied: list[str] = []

    def write(self, label: str) -> Write:
        async def run() -> None:
            self.attempts += 1
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionError("store down")
            self.applied.append(label)

        return run


async def test_write_behind_retries_in_order_until_stored() -> None:
    target = _Flaky(failures=4)
    queue = WriteBehind("test", initial_backoff=0.01, max_backoff=0.02)
    for n in range(5):
        queue.submit(f"w{n}", target.write(f"w{n}"))
    assert queue.pending == 5  # submit returned at once
    assert await queue.aclose(timeout=5) == 0
    assert target.applied == ["w0", "w1", "w2", "w3", "w4"]
    assert queue.retries == 4 and queue.stored == 5


async def test_write_behind_reports_what_it_could_not_store() -> None:
    target = _Flaky(failures=10_000)
    queue = WriteBehind("test", initial_backoff=0.01, max_backoff=0.02)
    queue.submit("a", target.write("a"))
    queue.submit("b", target.write("b"))
    assert await queue.aclose(timeout=0.2) == 2
    assert target.applied == []
    with pytest.raises(RuntimeError, match="closed"):
        queue.submit("c", target.write("c"))


async def test_write_behind_drops_writes_the_store_rejects() -> None:
    applied: list[str] = []

    async def bad() -> None:
        raise ValueError("invalid id")

    async def good() -> None:
        applied.append("good")

    queue = WriteBehind("test", initial_backoff=0.01)
    queue.submit("bad", bad)
    queue.submit("good", good)
    assert await queue.aclose(timeout=2) == 0
    assert applied == ["good"] and queue.dropped == 1


async def test_write_behind_times_out_a_hung_write_and_retries() -> None:
    calls = 0

    async def hangs_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(60)

    queue = WriteBehind("test", initial_backoff=0.01, attempt_timeout=0.1)
    queue.submit("w", hangs_once)
    assert await queue.aclose(timeout=3) == 0
    assert calls == 2


async def test_write_behind_gives_up_on_an_unexpected_error_but_not_on_an_outage() -> None:
    from agent.writebehind import MAX_UNEXPECTED_ATTEMPTS
    from stores import StoreError, StoreUnavailableError

    attempts = {"broken": 0, "outage": 0}
    applied: list[str] = []

    async def broken() -> None:  # e.g. a constraint the store will never accept
        attempts["broken"] += 1
        raise StoreError("permission denied for table memories")

    async def outage_then_ok() -> None:
        attempts["outage"] += 1
        if attempts["outage"] <= MAX_UNEXPECTED_ATTEMPTS + 3:
            raise StoreUnavailableError("store down")
        applied.append("outage")

    async def after() -> None:
        applied.append("after")

    queue = WriteBehind("test", initial_backoff=0.001, max_backoff=0.002)
    queue.submit("broken", broken)
    queue.submit("outage", outage_then_ok)
    queue.submit("after", after)
    assert await queue.aclose(timeout=5) == 0
    assert attempts["broken"] == MAX_UNEXPECTED_ATTEMPTS and queue.dropped == 1  # did not block the queue
    assert applied == ["outage", "after"]  # an outage is waited out, however long


async def test_a_thread_deleted_during_the_call_is_not_brought_back(mem_store: UserStore) -> None:
    user = str(uuid.uuid4())
    transcript = VoiceTranscript(mem_store, user, "room", "job")
    transcript.add("user", "first")
    assert await transcript.flush(5)
    await mem_store.forget_user(user)  # DELETE /me while the call is still going
    transcript.add("assistant", "second")
    assert await transcript.aclose(5) == 0
    assert (await mem_store.threads.load_threads(10, None, "asc", {"user_id": user})).data == []
