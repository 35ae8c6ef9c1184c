"""Keyset pages over threads and items: exact order, equal timestamps, cursors, limits."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from stores import UserStore
from tests.contract import factories as f

# Creation times with ties, one before the epoch (negative sort key), naive and aware
# mixed, inserted in a scrambled order. Expected order: by instant, ties by insertion.
_PRE_EPOCH = datetime(1969, 7, 20, 20, 17, 40, tzinfo=f.UTC)


def _timeline() -> list[tuple[str, datetime]]:
    """(id, created_at) in insertion order; ties are inserted against id order on purpose."""
    equal = f.at(500)
    return [
        ("r08", equal),
        ("r09", f.at(900)),
        ("r05", equal),
        ("r00", _PRE_EPOCH),
        ("r07", equal),
        ("r02", f.at(-1)),
        ("r06", equal.astimezone().replace(tzinfo=None)),  # naive local time, same instant
        ("r01", _PRE_EPOCH + timedelta(microseconds=1)),
        ("r11", f.at(10**7)),
        ("r04", f.at(0)),
        ("r03", f.at(0)),
        ("r10", f.at(10**7)),
    ]


# by instant, ties in insertion order
EXPECTED_ASC = ["r00", "r01", "r02", "r04", "r03", "r08", "r05", "r07", "r06", "r09", "r11", "r10"]


async def _seed_items(store: UserStore, user_id: str) -> str:
    await store.threads.save_thread(f.thread("thr_p"), f.ctx(user_id))
    for item_id, created_at in _timeline():
        await store.threads.add_thread_item("thr_p", f.user_message(item_id, "thr_p", created_at), f.ctx(user_id))
    return "thr_p"


async def _seed_threads(store: UserStore, user_id: str) -> None:
    for thread_id, created_at in _timeline():
        await store.threads.save_thread(f.thread(thread_id, created_at), f.ctx(user_id))


async def _walk(load, limit: int, order: str) -> list[str]:
    """Follow `after` from page to page, checking page invariants on the way."""
    seen: list[str] = []
    after: str | None = None
    for _ in range(100):
        page = await load(limit, after, order)
        assert len(page.data) <= limit
        if after is not None:
            assert page.data, "has_more promised rows but the next page is empty"
        seen.extend(row.id for row in page.data)
        if not page.has_more:
            assert page.after is None, "Page.after must be None on the last page"
            return seen
        assert page.data, "has_more with an empty page"
        assert page.after == page.data[-1].id
        after = page.after
    raise AssertionError("pagination never ended")


def _item_loader(store: UserStore, user_id: str, thread_id: str):
    async def load(limit: int, after: str | None, order: str):
        return await store.threads.load_thread_items(thread_id, after, limit, order, f.ctx(user_id))

    return load


def _thread_loader(store: UserStore, user_id: str):
    async def load(limit: int, after: str | None, order: str):
        return await store.threads.load_threads(limit, after, order, f.ctx(user_id))

    return load


@pytest.mark.parametrize("target", ["items", "threads"])
async def test_every_limit_walks_every_row_once_in_order(store: UserStore, user_a: str, target: str) -> None:
    if target == "items":
        load = _item_loader(store, user_a, await _seed_items(store, user_a))
    else:
        await _seed_threads(store, user_a)
        load = _thread_loader(store, user_a)

    for limit in range(1, len(EXPECTED_ASC) + 2):
        assert await _walk(load, limit, "asc") == EXPECTED_ASC, f"asc, limit {limit}"
        assert await _walk(load, limit, "desc") == EXPECTED_ASC[::-1], f"desc, limit {limit}"


@pytest.mark.parametrize("target", ["items", "threads"])
async def test_many_equal_timestamps_keep_insertion_order(store: UserStore, user_a: str, target: str) -> None:
    names = [f"eq_{i:02d}" for i in (3, 1, 4, 0, 5, 9, 2, 6, 8, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)]
    if target == "items":
        await store.threads.save_thread(f.thread("thr_eq"), f.ctx(user_a))
        for name in names:
            await store.threads.add_thread_item("thr_eq", f.user_message(name, "thr_eq", f.NAIVE), f.ctx(user_a))
        load = _item_loader(store, user_a, "thr_eq")
    else:
        for name in names:
            await store.threads.save_thread(f.thread(name, f.NAIVE), f.ctx(user_a))
        load = _thread_loader(store, user_a)

    for limit in (1, 3, 7, 20):
        assert await _walk(load, limit, "asc") == names
        assert await _walk(load, limit, "desc") == names[::-1]


async def test_first_pages_as_chatkit_requests_them(store: UserStore, user_a: str) -> None:
    thread_id = await _seed_items(store, user_a)
    load = _item_loader(store, user_a, thread_id)

    newest = await load(1, None, "desc")
    assert f.ids(newest.data) == ["r10"] and newest.has_more and newest.after == "r10"
    last_two = await load(2, None, "desc")
    assert f.ids(last_two.data) == ["r10", "r11"]
    opening = await load(20, None, "asc")
    assert f.ids(opening.data) == EXPECTED_ASC and not opening.has_more and opening.after is None
    exact = await load(len(EXPECTED_ASC), None, "asc")
    assert not exact.has_more and exact.after is None


@pytest.mark.parametrize("target", ["items", "threads"])
async def test_unknown_or_foreign_cursor_gives_empty_page(
    store: UserStore, user_a: str, user_b: str, target: str
) -> None:
    # user B owns a row "foreign_row"; an other-thread item of A is also foreign to thr_p's pages
    await store.threads.save_thread(f.thread("foreign_row"), f.ctx(user_b))
    await store.threads.add_thread_item("foreign_row", f.message(1, "foreign_row", f.BASE), f.ctx(user_b))
    if target == "items":
        load = _item_loader(store, user_a, await _seed_items(store, user_a))
        await store.threads.save_thread(f.thread("thr_side"), f.ctx(user_a))
        await store.threads.add_thread_item("thr_side", f.message(7, "thr_side", f.BASE), f.ctx(user_a))
        cursors = ["no_such_row", "foreign_row", "msg_0001", "msg_0007", "thr_p"]
    else:
        await _seed_threads(store, user_a)
        load = _thread_loader(store, user_a)
        cursors = ["no_such_row", "foreign_row", "msg_0001"]

    for cursor in cursors:
        for order in ("asc", "desc"):
            page = await load(5, cursor, order)
            assert page.data == [], f"cursor {cursor!r} {order} restarted or leaked: {f.ids(page.data)}"
            assert not page.has_more and page.after is None


async def test_deleted_cursor_row_does_not_restart(store: UserStore, user_a: str) -> None:
    thread_id = await _seed_items(store, user_a)
    first = await store.threads.load_thread_items(thread_id, None, 3, "asc", f.ctx(user_a))
    assert first.after is not None
    await store.threads.delete_thread_item(thread_id, first.after, f.ctx(user_a))

    page = await store.threads.load_thread_items(thread_id, first.after, 3, "asc", f.ctx(user_a))

    assert not set(f.ids(page.data)) & set(f.ids(first.data))


@pytest.mark.parametrize("limit", [0, -5, 10**9])
@pytest.mark.parametrize("target", ["items", "threads"])
async def test_absurd_limits_are_clamped(store: UserStore, user_a: str, target: str, limit: int) -> None:
    if target == "items":
        load = _item_loader(store, user_a, await _seed_items(store, user_a))
    else:
        await _seed_threads(store, user_a)
        load = _thread_loader(store, user_a)

    page = await load(limit, None, "asc")

    assert page.data, "a clamped limit still returns rows"
    assert f.ids(page.data) == EXPECTED_ASC[: len(page.data)]
    assert page.has_more == (len(page.data) < len(EXPECTED_ASC))
    if limit > 0:
        assert f.ids(page.data) == EXPECTED_ASC and page.after is None


async def test_large_limit_is_capped_not_unbounded(store: UserStore, user_a: str) -> None:
    await store.threads.save_thread(f.thread("thr_big"), f.ctx(user_a))
    await asyncio.gather(
        *(store.threads.add_thread_item("thr_big", f.message(i, "thr_big", f.at(i)), f.ctx(user_a)) for i in range(130))
    )

    page = await store.threads.load_thread_items("thr_big", None, 10**9, "desc", f.ctx(user_a))

    assert 20 <= len(page.data) < 130 and page.has_more and page.after == page.data[-1].id
    assert len(await f.all_items(store, user_a, "thr_big", "desc", limit=10**9)) == 130


@pytest.mark.parametrize("order", ["ASC", "newest", "", None])
async def test_invalid_order_is_rejected(store: UserStore, user_a: str, order) -> None:
    await store.threads.save_thread(f.thread("thr_o"), f.ctx(user_a))
    with pytest.raises(ValueError):
        await store.threads.load_thread_items("thr_o", None, 5, order, f.ctx(user_a))
    with pytest.raises(ValueError):
        await store.threads.load_threads(5, None, order, f.ctx(user_a))
