"""Attachment metadata: round trip, upsert, scoping and idempotent delete."""

from __future__ import annotations

import pytest

from stores import NotFoundError, UserStore
from tests.contract import factories as f


@pytest.mark.parametrize("build", [f.file_attachment, f.image_attachment], ids=["file", "image"])
@pytest.mark.parametrize("thread_id", [None, "thr_1"], ids=["unbound", "bound"])
async def test_attachment_round_trips(store: UserStore, user_a: str, build, thread_id: str | None) -> None:
    saved = build("atc_1", thread_id)
    await store.threads.save_attachment(saved, f.ctx(user_a))

    loaded = await store.threads.load_attachment("atc_1", f.ctx(user_a))

    assert type(loaded) is type(saved)
    assert f.attachment_equal(store, loaded, saved)


async def test_save_attachment_again_binds_it_to_a_thread(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    await store.threads.save_thread(f.thread("thr_1"), context)
    await store.threads.save_attachment(f.file_attachment("atc_1"), context)  # right after create_attachment

    bound = f.file_attachment("atc_1", "thr_1")
    await store.threads.save_attachment(bound, context)  # again when the message is saved

    assert await store.threads.load_attachment("atc_1", context) == bound
    await store.threads.delete_thread("thr_1", context)
    with pytest.raises(NotFoundError):
        await store.threads.load_attachment("atc_1", context)


async def test_missing_attachment_raises_not_found(store: UserStore, user_a: str) -> None:
    with pytest.raises(NotFoundError):
        await store.threads.load_attachment("atc_missing", f.ctx(user_a))


async def test_delete_attachment_is_idempotent_and_scoped(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    await store.threads.save_attachment(f.file_attachment("atc_1"), context)
    await store.threads.save_attachment(f.image_attachment("atc_2"), context)

    await store.threads.delete_attachment("atc_1", context)
    await store.threads.delete_attachment("atc_1", context)
    await store.threads.delete_attachment("atc_never", context)

    with pytest.raises(NotFoundError):
        await store.threads.load_attachment("atc_1", context)
    assert (await store.threads.load_attachment("atc_2", context)).id == "atc_2"
    assert [a["id"] for a in (await store.export_user(user_a))["attachments"]] == ["atc_2"]


async def test_attachment_ids_do_not_collide_with_item_or_thread_ids(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    await store.threads.save_thread(f.thread("same_id"), context)
    await store.threads.add_thread_item("same_id", f.message(1, "same_id", f.BASE), context)
    await store.threads.save_attachment(f.file_attachment("same_id", "same_id"), context)

    await store.threads.delete_attachment("same_id", context)

    assert (await store.threads.load_thread("same_id", context)).id == "same_id"
    assert f.ids(await f.all_items(store, user_a, "same_id")) == ["msg_0001"]
