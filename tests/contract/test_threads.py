"""Thread metadata: save/load round trip, upsert semantics, never auto-create, delete."""

from __future__ import annotations

import pytest
from chatkit.types import ThreadMetadata

from stores import NotFoundError, UserStore
from tests.contract import factories as f


@pytest.mark.parametrize("created_at", [f.NAIVE, f.AWARE_UTC, f.AWARE_PLUS5], ids=["naive", "utc", "plus0530"])
async def test_thread_metadata_round_trips_exactly(store: UserStore, user_a: str, created_at) -> None:
    saved = f.rich_thread("thr_rich", created_at)
    await store.threads.save_thread(saved, f.ctx(user_a))

    loaded = await store.threads.load_thread("thr_rich", f.ctx(user_a))

    assert loaded == saved
    assert loaded.model_dump_json() == saved.model_dump_json()  # offsets and naivety kept, not normalised
    assert [t.model_dump_json() for t in await f.all_threads(store, user_a)] == [saved.model_dump_json()]


async def test_save_thread_with_items_stores_only_metadata(store: UserStore, user_a: str) -> None:
    item = f.user_message("msg_1", "thr_1")
    await store.threads.save_thread(f.thread_with_items("thr_1", [item]), f.ctx(user_a))

    loaded = await store.threads.load_thread("thr_1", f.ctx(user_a))

    assert type(loaded) is ThreadMetadata  # never a Thread carrying items
    expected = ThreadMetadata(id="thr_1", created_at=f.BASE, title="with items")
    assert loaded == expected
    assert (await store.threads.load_thread_items("thr_1", None, 20, "asc", f.ctx(user_a))).data == []
    with pytest.raises(NotFoundError):
        await store.threads.load_item("thr_1", "msg_1", f.ctx(user_a))


async def test_save_thread_updates_metadata_and_keeps_position(store: UserStore, user_a: str) -> None:
    for name in ("thr_1", "thr_2", "thr_3"):
        await store.threads.save_thread(f.thread(name), f.ctx(user_a))

    renamed = f.thread("thr_1", title="Renamed")
    await store.threads.save_thread(renamed, f.ctx(user_a))

    assert await store.threads.load_thread("thr_1", f.ctx(user_a)) == renamed
    threads = await f.all_threads(store, user_a, "asc")
    assert f.ids(threads) == ["thr_1", "thr_2", "thr_3"]
    assert threads[0].title == "Renamed"


async def test_load_thread_never_creates(store: UserStore, user_a: str) -> None:
    for _ in range(2):
        with pytest.raises(NotFoundError):
            await store.threads.load_thread("thr_missing", f.ctx(user_a))
    assert await f.all_threads(store, user_a) == []
    export = await store.export_user(user_a)
    assert export["threads"] == []


async def test_delete_thread_removes_thread_items_and_bound_attachments(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    for name in ("thr_gone", "thr_kept"):
        await store.threads.save_thread(f.thread(name), context)
        for i in range(3):
            await store.threads.add_thread_item(name, f.message(i, name, f.at(i)), context)
    await store.threads.save_attachment(f.file_attachment("atc_bound", "thr_gone"), context)
    await store.threads.save_attachment(f.file_attachment("atc_other", "thr_kept"), context)
    await store.threads.save_attachment(f.file_attachment("atc_loose"), context)

    await store.threads.delete_thread("thr_gone", context)

    with pytest.raises(NotFoundError):
        await store.threads.load_thread("thr_gone", context)
    with pytest.raises(NotFoundError):
        await store.threads.load_item("thr_gone", "msg_0000", context)
    with pytest.raises(NotFoundError):
        await store.threads.load_attachment("atc_bound", context)
    assert (await store.threads.load_thread_items("thr_gone", None, 20, "asc", context)).data == []
    assert f.ids(await f.all_threads(store, user_a)) == ["thr_kept"]
    assert f.ids(await f.all_items(store, user_a, "thr_kept")) == ["msg_0000", "msg_0001", "msg_0002"]
    assert (await store.threads.load_attachment("atc_other", context)).id == "atc_other"
    assert (await store.threads.load_attachment("atc_loose", context)).id == "atc_loose"

    await store.threads.delete_thread("thr_gone", context)  # idempotent
    await store.threads.delete_thread("thr_never_existed", context)


async def test_recreated_thread_starts_empty(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    await store.threads.save_thread(f.thread("thr_1"), context)
    await store.threads.add_thread_item("thr_1", f.message(1, "thr_1", f.at(1)), context)
    await store.threads.delete_thread("thr_1", context)

    await store.threads.save_thread(f.thread("thr_1", title="again"), context)

    assert (await store.threads.load_thread("thr_1", context)).title == "again"
    assert await f.all_items(store, user_a, "thr_1") == []
    with pytest.raises(NotFoundError):
        await store.threads.load_item("thr_1", "msg_0001", context)


async def test_generated_ids_are_long_prefixed_and_valid(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    meta = f.thread("thr_1")
    thread_ids = {store.threads.generate_thread_id(context) for _ in range(50)}
    item_ids = {store.threads.generate_item_id("message", meta, context) for _ in range(50)}
    attachment_id = store.threads.generate_attachment_id("image/png", context)

    assert len(thread_ids) == 50 and len(item_ids) == 50
    assert all(t.startswith("thr_") and len(t) >= 20 for t in thread_ids)
    assert all(i.startswith("msg_") and len(i) >= 20 for i in item_ids)
    assert attachment_id.startswith("atc_")
    # a generated id is accepted by the store's own validation
    await store.threads.save_thread(f.thread(next(iter(thread_ids))), context)
