"""Retention on every backend: stale memories are forgotten, old voice-call transcripts deleted, nothing else.

Time is injected: memories are written now, and the sweeper's clock is moved so the
cutoff falls between the old and the fresh writes. A sweep covers the whole store, and
the Postgres test database is shared by the session, so counts are "at least ours";
what happened to our users' data is checked exactly.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from chatkit.types import ThreadMetadata

from stores import NotFoundError, UserStore
from stores.retention import Sweeper
from tests.contract import factories as f

DAY = timedelta(days=1)


def voice_thread(thread_id: str, created_at: datetime) -> ThreadMetadata:
    """A thread as agent/transcript.py saves a voice call."""
    return ThreadMetadata(
        id=thread_id,
        created_at=created_at,
        title="Voice call",
        metadata={"source": "voice", "room": "room-1", "job_id": "job-1"},
    )


async def _old_and_fresh_memories(store: UserStore, user_a: str, user_b: str) -> datetime:
    """Three old memories (two users), then the cutoff instant, then two fresh ones; returns the cutoff."""
    await store.memories.remember(user_a, "fact", "old one", "stale 1")
    await store.memories.remember(user_a, "fact", "old two", "stale 2")
    await store.memories.remember(user_b, "fact", "old three", "stale 3")
    await asyncio.sleep(0.002)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.002)
    await store.memories.remember(user_a, "fact", "fresh", "recent")
    await store.memories.remember(user_a, "fact", "old two", "refreshed")  # updated since: kept
    return cutoff


async def test_memories_not_updated_for_n_days_are_forgotten_in_batches(
    store: UserStore, user_a: str, user_b: str
) -> None:
    cutoff = await _old_and_fresh_memories(store, user_a, user_b)
    sweeper = Sweeper(store, memory_days=30, transcript_days=None, batch=1, clock=lambda: cutoff + 30 * DAY)

    result = await sweeper.sweep()

    assert result.memories >= 2 and result.threads == 0
    assert sorted(m.key for m in await store.memories.list(user_a)) == ["fresh", "old_two"]
    assert await store.memories.list(user_b) == []
    latest = (await store.memories.history(user_a))[0]
    assert (latest.op, latest.source, latest.key) == ("forget", "retention", "old_one")
    assert (await sweeper.sweep()).memories == 0  # nothing left to expire


async def test_nothing_expires_before_its_time(store: UserStore, user_a: str, user_b: str) -> None:
    cutoff = await _old_and_fresh_memories(store, user_a, user_b)
    sweeper = Sweeper(store, memory_days=30, transcript_days=30, clock=lambda: cutoff + 30 * DAY - 60 * DAY)

    assert (await sweeper.sweep()).memories == 0
    assert len(await store.memories.list(user_a)) == 3


async def test_unset_retention_keeps_everything(store: UserStore, user_a: str) -> None:
    await store.memories.remember(user_a, "fact", "city", "Lisbon")
    await store.threads.save_thread(voice_thread("thr_v", datetime.now(UTC) - 400 * DAY), f.ctx(user_a))
    sweeper = Sweeper(store, memory_days=None, transcript_days=None, clock=lambda: datetime.now(UTC) + 999 * DAY)

    assert not sweeper.enabled
    assert (await sweeper.sweep()).memories == 0
    assert len(await store.memories.list(user_a)) == 1
    await store.threads.load_thread("thr_v", f.ctx(user_a))


async def test_old_voice_call_threads_are_deleted_with_their_items_and_attachments(
    store: UserStore, user_a: str, user_b: str
) -> None:
    now = datetime.now(UTC)
    a, b = f.ctx(user_a), f.ctx(user_b)
    await store.threads.save_thread(voice_thread("thr_old_call", now - 40 * DAY), a)
    await store.threads.add_thread_item(
        "thr_old_call", f.user_message("msg_1", "thr_old_call", now - 40 * DAY, text="old call words"), a
    )
    await store.threads.save_attachment(f.file_attachment("atc_call", "thr_old_call"), a)
    await store.threads.save_thread(voice_thread("thr_new_call", now - 10 * DAY), a)
    await store.threads.save_thread(f.thread("thr_old_chat", now - 90 * DAY, title="typed chat"), a)
    await store.threads.save_thread(voice_thread("thr_b_call", now - 41 * DAY), b)
    await store.memories.remember(user_a, "fact", "city", "Lisbon")
    sweeper = Sweeper(store, memory_days=None, transcript_days=30, batch=1, clock=lambda: now)

    result = await sweeper.sweep()

    assert result.memories == 0 and result.threads >= 2
    for thread_id, context in (("thr_old_call", a), ("thr_b_call", b)):
        try:
            await store.threads.load_thread(thread_id, context)
        except NotFoundError:
            continue
        raise AssertionError(f"{thread_id} should have been deleted")
    assert [a.id for a in await store.threads.list_attachments(user_a)] == []
    remaining = (await store.threads.load_threads(10, None, "asc", a)).data
    assert [t.id for t in remaining] == ["thr_old_chat", "thr_new_call"]  # chats and recent calls stay
    assert len(await store.memories.list(user_a)) == 1  # memories are not transcripts


async def test_two_sweepers_at_once_remove_each_thing_once(store: UserStore, user_a: str) -> None:
    for i in range(12):
        await store.memories.remember(user_a, "fact", f"k{i}", f"v{i}")
    await asyncio.sleep(0.002)
    cutoff = datetime.now(UTC)
    now = cutoff + 31 * DAY
    for i in range(3):
        await store.threads.save_thread(voice_thread(f"thr_{i}", now - 40 * DAY), f.ctx(user_a))
    sweepers = [Sweeper(store, memory_days=31, transcript_days=30, batch=5, clock=lambda: now) for _ in range(2)]

    results = await asyncio.gather(*(s.sweep() for s in sweepers))

    assert sum(r.memories for r in results) >= 12
    assert await store.memories.list(user_a) == []
    forgets = [c for c in await store.memories.history(user_a) if c.op == "forget"]
    assert sorted(c.key for c in forgets) == sorted(f"k{i}" for i in range(12))  # each exactly once
    assert (await store.threads.load_threads(10, None, "asc", f.ctx(user_a))).data == []
