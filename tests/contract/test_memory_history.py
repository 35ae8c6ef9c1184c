"""The memory audit trail: every change of a memory, per user, newest first, bounded, erased with the user."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from memory.models import MAX_MEMORY_CHANGES
from stores import UserStore


async def test_history_records_remember_update_and_forget_with_their_sources(
    store: UserStore, user_a: str, user_b: str
) -> None:
    before = datetime.now(UTC)
    first = await store.memories.remember(user_a, "preference", "Favourite Colour", "teal", source="voice")
    await store.memories.remember(user_a, "preference", "favourite colour", "crimson", source="chat")
    await store.memories.remember(user_b, "fact", "city", "Oslo", source="api")
    assert await store.memories.forget(user_a, "preference", "favourite colour", source="api")
    assert not await store.memories.forget(user_a, "preference", "favourite colour", source="api")  # nothing left

    history = await store.memories.history(user_a)

    assert [(c.op, c.source, c.category, c.key, c.memory_id) for c in history] == [
        ("forget", "api", "preference", "favourite_colour", first.id),
        ("update", "chat", "preference", "favourite_colour", first.id),
        ("remember", "voice", "preference", "favourite_colour", first.id),
    ]
    assert all(c.user_id == user_a for c in history)
    assert len({c.id for c in history}) == 3
    assert all(before - timedelta(seconds=5) <= c.at <= datetime.now(UTC) for c in history)
    assert [c.at for c in history] == sorted((c.at for c in history), reverse=True)
    assert [(c.op, c.key) for c in await store.memories.history(user_b)] == [("remember", "city")]


async def test_history_never_holds_the_value(store: UserStore, user_a: str) -> None:
    await store.memories.remember(user_a, "fact", "pin", "zq-value-4711")
    await store.memories.forget(user_a, "fact", "pin")

    assert "zq-value-4711" not in json.dumps([c.model_dump(mode="json") for c in await store.memories.history(user_a)])


async def test_history_limit_and_bound(store: UserStore, user_a: str, user_b: str) -> None:
    await store.memories.remember(user_b, "fact", "other", "kept")
    writes = MAX_MEMORY_CHANGES + 25
    for start in range(0, writes, 50):  # concurrent batches, as a busy user would write
        await asyncio.gather(
            *(store.memories.remember(user_a, "fact", f"k{i}", f"v{i}") for i in range(start, min(start + 50, writes)))
        )

    assert len(await store.memories.history(user_a, limit=10)) == 10
    everything = await store.memories.history(user_a, limit=MAX_MEMORY_CHANGES * 5)
    assert len(everything) == MAX_MEMORY_CHANGES  # the oldest 25 were dropped
    kept = {c.key for c in everything}
    assert {f"k{i}" for i in range(50, writes)} <= kept  # every later batch survives
    assert len(kept & {f"k{i}" for i in range(50)}) == 25  # 25 of the first (concurrent) batch were dropped
    assert [c.key for c in await store.memories.history(user_b)] == ["other"]  # another user's trail is untouched


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
async def test_history_rejects_a_bad_limit(store: UserStore, user_a: str, limit: object) -> None:
    with pytest.raises(ValueError, match="limit must be a whole number"):
        await store.memories.history(user_a, limit=limit)  # type: ignore[arg-type]


async def test_export_carries_the_history_and_forget_user_erases_it(store: UserStore, user_a: str, user_b: str) -> None:
    await store.memories.remember(user_a, "fact", "city", "Lisbon", source="voice")
    await store.memories.remember(user_b, "fact", "city", "Oslo", source="chat")

    export = await store.export_user(user_a)
    assert [(c["op"], c["source"], c["key"]) for c in export["memory_changes"]] == [("remember", "voice", "city")]

    await store.forget_user(user_a)

    assert await store.memories.history(user_a) == []
    assert (await store.export_user(user_a))["memory_changes"] == []
    assert [c.source for c in await store.memories.history(user_b)] == ["chat"]


async def test_retention_forget_only_takes_a_memory_not_updated_since(store: UserStore, user_a: str) -> None:
    old = await store.memories.remember(user_a, "fact", "old", "stale")
    cutoff = old.updated_at + timedelta(microseconds=1)
    await asyncio.sleep(0.002)
    await store.memories.remember(user_a, "fact", "fresh", "recent")

    assert not await store.memories.forget_stale(user_a, "fact", "fresh", cutoff)
    assert await store.memories.forget_stale(user_a, "fact", "old", cutoff)
    assert not await store.memories.forget_stale(user_a, "fact", "old", cutoff)  # already gone

    assert [m.key for m in await store.memories.list(user_a)] == ["fresh"]
    latest = (await store.memories.history(user_a))[0]
    assert (latest.op, latest.source, latest.key, latest.memory_id) == ("forget", "retention", "old", old.id)


async def test_forget_from_records_one_forget_per_memory_of_that_conversation(store: UserStore, user_a: str) -> None:
    await store.memories.remember(user_a, "fact", "city", "Lisbon", source="chat", thread_id="thr_1", item_id="msg_1")
    await store.memories.remember(user_a, "fact", "pet", "Rex", source="chat", thread_id="thr_1", item_id="msg_2")
    await store.memories.remember(user_a, "fact", "job", "baker", source="voice", thread_id="thr_2")

    assert await store.memories.forget_from(user_a, "thr_1", source="api") == 2

    history = await store.memories.history(user_a)
    forgets = [c for c in history if c.op == "forget"]
    assert sorted((c.key, c.source, c.thread_id) for c in forgets) == [
        ("city", "api", "thr_1"),
        ("pet", "api", "thr_1"),
    ]
    assert len({c.id for c in history}) == len(history) == 5
    remembered = history[-1]
    assert (remembered.op, remembered.key, remembered.thread_id, remembered.item_id) == (
        "remember",
        "city",
        "thr_1",
        "msg_1",
    )


async def test_concurrent_writes_past_the_bound_all_succeed_and_keep_exactly_the_bound(
    store: UserStore, user_a: str
) -> None:
    """A busy user past 1,000 changes: writers trimming the trail at once must not deadlock or overshoot."""
    for start in range(0, MAX_MEMORY_CHANGES, 100):
        batch = range(start, start + 100)
        await asyncio.gather(*(store.memories.remember(user_a, "fact", f"k{i}", "v") for i in batch))

    for round_ in range(4):  # updates, new keys and forgets, 16 at a time
        await asyncio.gather(
            *(store.memories.remember(user_a, "fact", f"k{i}", f"round {round_}") for i in range(8)),
            *(store.memories.remember(user_a, "goal", f"g{round_}-{i}", "new") for i in range(4)),
            *(store.memories.forget(user_a, "fact", f"k{100 + 4 * round_ + i}") for i in range(4)),
        )

    history = await store.memories.history(user_a, limit=MAX_MEMORY_CHANGES * 2)
    assert len(history) == MAX_MEMORY_CHANGES
    assert [m.value for m in await store.memories.list(user_a, "fact") if m.key == "k0"] == ["round 3"]
    assert sum(1 for c in history if c.op == "forget") == 16
