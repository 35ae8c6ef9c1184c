"""Isolation, the product's first promise: no call made for one user reads or changes another's data."""

from __future__ import annotations

import pytest

from stores import NotFoundError, UserStore
from tests.contract import factories as f


async def _seed(store: UserStore, user_id: str, label: str) -> None:
    """A thread `thr_shared` (same id for every user), items, attachments, a memory and a profile."""
    context = f.ctx(user_id)
    await store.threads.save_thread(f.thread("thr_shared", title=f"{label} title"), context)
    await store.threads.add_thread_item(
        "thr_shared", f.user_message("msg_shared", "thr_shared", f.at(0), text=f"{label} secret"), context
    )
    await store.threads.add_thread_item("thr_shared", f.assistant_message("msg_reply", "thr_shared", f.at(1)), context)
    await store.threads.save_attachment(f.file_attachment("atc_shared", "thr_shared", name=f"{label}.pdf"), context)
    await store.memories.remember(user_id, "preference", "colour", f"{label} likes teal")
    await store.profiles.ensure(user_id, identity=f"{label}@example.com")


async def test_same_thread_id_for_two_users_stays_separate(store: UserStore, user_a: str, user_b: str) -> None:
    await _seed(store, user_a, "alice")
    await _seed(store, user_b, "bob")

    for user_id, label in ((user_a, "alice"), (user_b, "bob")):
        context = f.ctx(user_id)
        assert (await store.threads.load_thread("thr_shared", context)).title == f"{label} title"
        items = await f.all_items(store, user_id, "thr_shared")
        assert items[0].content[0].text == f"{label} secret"
        assert f.ids(items) == ["msg_shared", "msg_reply"]
        assert (await store.threads.load_attachment("atc_shared", context)).name == f"{label}.pdf"
        assert f.ids(await f.all_threads(store, user_id)) == ["thr_shared"]


async def test_every_method_treats_foreign_data_as_missing(store: UserStore, user_a: str, user_b: str) -> None:
    await _seed(store, user_a, "alice")
    before = await f.snapshot(store, user_a)
    b = f.ctx(user_b)
    item = f.message(9, "thr_shared", f.at(9))

    with pytest.raises(NotFoundError):
        await store.threads.load_thread("thr_shared", b)
    with pytest.raises(NotFoundError):
        await store.threads.load_item("thr_shared", "msg_shared", b)
    with pytest.raises(NotFoundError):
        await store.threads.load_attachment("atc_shared", b)
    with pytest.raises(NotFoundError):
        await store.threads.add_thread_item("thr_shared", item, b)
    with pytest.raises(NotFoundError):
        await store.threads.save_item("thr_shared", f.user_message("msg_shared", "thr_shared", text="pwned"), b)
    for order in ("asc", "desc"):
        page = await store.threads.load_thread_items("thr_shared", None, 20, order, b)
        assert page.data == [] and not page.has_more and page.after is None
        assert (await store.threads.load_thread_items("thr_shared", "msg_shared", 20, order, b)).data == []
        assert (await store.threads.load_threads(20, None, order, b)).data == []
    await store.threads.delete_thread_item("thr_shared", "msg_shared", b)
    await store.threads.delete_attachment("atc_shared", b)
    await store.threads.delete_thread("thr_shared", b)
    assert await store.memories.get(user_b, "preference", "colour") is None
    assert await store.memories.forget(user_b, "preference", "colour") is False
    assert await store.memories.search(user_b, "colour teal alice", 10) == []
    assert await store.memories.list(user_b) == []
    assert await store.profiles.get(user_b) is None

    assert await f.snapshot(store, user_a) == before


async def test_save_thread_by_another_user_never_overwrites(store: UserStore, user_a: str, user_b: str) -> None:
    await _seed(store, user_a, "alice")
    before = await f.snapshot(store, user_a)

    await store.threads.save_thread(f.thread("thr_shared", title="bob's own"), f.ctx(user_b))

    assert await f.snapshot(store, user_a) == before
    assert (await store.threads.load_thread("thr_shared", f.ctx(user_b))).title == "bob's own"
    assert await f.all_items(store, user_b, "thr_shared") == []  # B does not inherit A's items


async def test_save_attachment_by_another_user_never_overwrites(store: UserStore, user_a: str, user_b: str) -> None:
    await _seed(store, user_a, "alice")
    before = await f.snapshot(store, user_a)

    await store.threads.save_attachment(f.file_attachment("atc_shared", name="bob.pdf"), f.ctx(user_b))

    assert await f.snapshot(store, user_a) == before
    assert (await store.threads.load_attachment("atc_shared", f.ctx(user_b))).name == "bob.pdf"
    assert (await store.threads.load_attachment("atc_shared", f.ctx(user_a))).name == "alice.pdf"


async def test_deletes_by_one_user_leave_the_other_intact(store: UserStore, user_a: str, user_b: str) -> None:
    await _seed(store, user_a, "alice")
    await _seed(store, user_b, "bob")
    before = await f.snapshot(store, user_a)
    b = f.ctx(user_b)

    await store.threads.delete_thread_item("thr_shared", "msg_shared", b)
    await store.threads.delete_attachment("atc_shared", b)
    await store.threads.delete_thread("thr_shared", b)
    await store.memories.forget(user_b, "preference", "colour")

    assert await f.snapshot(store, user_a) == before
    with pytest.raises(NotFoundError):
        await store.threads.load_thread("thr_shared", b)


@pytest.mark.parametrize("suffix", [".", "-", "_", "@x", ".x", "0"])
async def test_similar_user_ids_are_different_users(store: UserStore, suffix: str) -> None:
    owner = "user"
    await _seed(store, owner, "owner")
    other = owner + suffix

    with pytest.raises(NotFoundError):
        await store.threads.load_thread("thr_shared", f.ctx(other))
    assert await f.all_threads(store, other) == []
    assert await store.memories.list(other) == []
    assert (await store.export_user(other))["threads"] == []
    await store.forget_user(other)
    assert (await store.threads.load_thread("thr_shared", f.ctx(owner))).title == "owner title"


async def test_user_ids_are_case_sensitive(store: UserStore) -> None:
    await _seed(store, "abc", "lower")
    with pytest.raises(NotFoundError):
        await store.threads.load_thread("thr_shared", f.ctx("ABC"))
    assert await store.memories.list("ABC") == []


@pytest.mark.parametrize("probe", ["thr", "thr_share", "thr_shared_", "thr_shared-x", "THR_SHARED"])
async def test_similar_thread_ids_are_different_threads(store: UserStore, user_a: str, probe: str) -> None:
    await _seed(store, user_a, "alice")
    context = f.ctx(user_a)

    with pytest.raises(NotFoundError):
        await store.threads.load_thread(probe, context)
    assert (await store.threads.load_thread_items(probe, None, 20, "asc", context)).data == []
    with pytest.raises(NotFoundError):
        await store.threads.load_item(probe, "msg_shared", context)
    await store.threads.delete_thread(probe, context)
    assert f.ids(await f.all_items(store, user_a, "thr_shared")) == ["msg_shared", "msg_reply"]
