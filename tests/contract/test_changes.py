"""The change feed on every backend: a second store on the same data hears one user's writes, and only theirs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest

from stores import UserStore, open_store
from stores.changes import Change, Subscription

WITHIN = 5.0  # generous: the machine is shared; latency is measured in bench/change_feed.py


@pytest.fixture
async def other(store: UserStore, store_url: str) -> AsyncIterator[UserStore]:
    """Another store on the same data, as another process would open it (memory:// has no other)."""
    if store_url.startswith("memory://"):
        yield store
        return
    async with await open_store(store_url) as opened:
        yield opened


async def _next(subscription: Subscription, *, skip_resync: bool = True) -> Change:
    while True:
        change = await asyncio.wait_for(anext(subscription), WITHIN)
        if not (skip_resync and change.kind == "resync"):
            return change


async def _listening(subscription: Subscription) -> None:
    subscription.start()
    await asyncio.wait_for(subscription.listening.wait(), WITHIN)


async def test_memory_writes_and_erase_reach_a_subscriber_of_another_store(
    store: UserStore, other: UserStore, user_a: str
) -> None:
    async with other.changes.subscribe(user_a) as changes:
        await _listening(changes)
        first = await _next(changes, skip_resync=False)
        assert first.kind == "resync"  # listening: re-read what may have changed before

        await store.memories.remember(user_a, "preference", "colour", "teal")
        remembered = await _next(changes)
        await store.memories.forget(user_a, "preference", "colour")
        forgotten = await _next(changes)
        await store.forget_user(user_a)
        erased = await _next(changes)

    assert [(c.user_id, c.kind, c.op) for c in (remembered, forgotten, erased)] == [
        (user_a, "memory", "remember"),
        (user_a, "memory", "forget"),
        (user_a, "erase", "forget_user"),
    ]


async def test_a_subscriber_hears_only_its_own_user(
    store: UserStore, other: UserStore, user_a: str, user_b: str
) -> None:
    async with other.changes.subscribe(user_a) as changes_a:
        await _listening(changes_a)
        await store.memories.remember(user_b, "preference", "colour", "red")
        await store.forget_user(user_b)
        await store.memories.remember(user_a, "preference", "colour", "teal")

        heard = await _next(changes_a)
        await asyncio.sleep(0.2)  # anything of user B would have arrived before A's change anyway
        rest = [c for c in changes_a.drain() if c.kind != "resync"]

    assert (heard.user_id, heard.kind) == (user_a, "memory")
    assert rest == []


async def test_forgetting_nothing_publishes_nothing(store: UserStore, other: UserStore, user_a: str) -> None:
    async with other.changes.subscribe(user_a) as changes:
        await _listening(changes)
        assert await store.memories.forget(user_a, "preference", "never stored") is False
        await store.memories.remember(user_a, "preference", "colour", "teal")
        heard = await _next(changes)

    assert heard.op == "remember"  # the no-op forget came first and was not announced


async def test_two_subscribers_of_one_user_both_hear_and_closing_one_keeps_the_other(
    store: UserStore, other: UserStore, user_a: str
) -> None:
    first = other.changes.subscribe(user_a)
    second = other.changes.subscribe(user_a)
    await _listening(first)
    await _listening(second)
    await store.memories.remember(user_a, "preference", "colour", "teal")
    assert (await _next(first)).kind == "memory"
    assert (await _next(second)).kind == "memory"

    first.close()
    await store.memories.remember(user_a, "preference", "colour", "blue")
    assert (await _next(second)).kind == "memory"
    assert [c async for c in first] == []  # a closed subscription ends its iteration
    second.close()


async def test_closing_the_store_ends_its_subscriptions(store_url: str, user_a: str) -> None:
    opened = await open_store(store_url)
    changes = opened.changes.subscribe(user_a).start()
    waiting = asyncio.create_task(anext(changes, None))
    await asyncio.sleep(0)
    await opened.aclose()
    results = [c for c in [await asyncio.wait_for(waiting, WITHIN)] if c is not None and c.kind != "resync"]
    assert results == []
    assert changes.closed


async def test_sqlite_changes_table_holds_no_user_data(sqlite_store_url: str, user_a: str) -> None:
    async with await open_store(sqlite_store_url) as opened:
        await opened.memories.remember(user_a, "relationship", "sister", "Maya-canary-7731")
        await opened.forget_user(user_a)
    path = sqlite_store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT channel, payload FROM changes").fetchall()
    assert len(rows) == 2
    text = repr(rows)
    for secret in ("Maya-canary-7731", "sister", "relationship", user_a):
        assert secret not in text
