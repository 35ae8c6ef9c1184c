"""Attachment metadata: round trip, upsert, scoping and idempotent delete (bytes included)."""

from __future__ import annotations

from typing import Any

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


class RecordingFiles:
    """A `stores.files.FileStorage` that keeps bytes as a set of (user, id) and fails on request.

    Our own interface, so an in-test implementation is the real thing at this layer; the
    HTTP backends have their own tests in tests/http.
    """

    max_bytes = 10_000_000
    allowed_mime_types = frozenset({"application/pdf", "image/png"})

    def __init__(self) -> None:
        self.objects: set[tuple[str, str]] = set()
        self.deletes: list[tuple[str, str]] = []
        self.fail_once: set[str] = set()

    def put(self, user_id: str, attachment_id: str) -> None:
        self.objects.add((user_id, attachment_id))

    async def upload_descriptor(self, user_id: str, attachment_id: str, mime_type: str, size: int) -> Any:
        raise NotImplementedError  # not used here

    async def preview_url(self, user_id: str, attachment_id: str) -> str:
        return f"https://files.example.com/{user_id}/{attachment_id}"

    async def delete(self, user_id: str, attachment_id: str) -> None:
        self.deletes.append((user_id, attachment_id))
        if attachment_id in self.fail_once:
            self.fail_once.discard(attachment_id)
            raise OSError(f"storage hiccup deleting {attachment_id}")
        self.objects.discard((user_id, attachment_id))

    async def delete_user(self, user_id: str) -> None:
        self.objects = {o for o in self.objects if o[0] != user_id}


@pytest.fixture
def files(store: UserStore) -> RecordingFiles:
    recording = RecordingFiles()
    store.threads.files = recording
    return recording


async def test_retried_delete_attachment_deletes_bytes_left_by_a_failed_first_try(
    store: UserStore, user_a: str, files: RecordingFiles
) -> None:
    context = f.ctx(user_a)
    await store.threads.save_attachment(f.file_attachment("atc_1"), context)
    files.put(user_a, "atc_1")
    files.fail_once.add("atc_1")

    with pytest.raises(OSError, match="storage hiccup"):
        await store.threads.delete_attachment("atc_1", context)
    await store.threads.delete_attachment("atc_1", context)  # the metadata is gone already

    assert files.objects == set()
    with pytest.raises(NotFoundError):
        await store.threads.load_attachment("atc_1", context)


async def test_delete_attachment_always_asks_storage_for_this_users_bytes_only(
    store: UserStore, user_a: str, user_b: str, files: RecordingFiles
) -> None:
    files.put(user_b, "atc_1")

    await store.threads.delete_attachment("atc_1", f.ctx(user_a))  # never saved as metadata

    assert files.deletes == [(user_a, "atc_1")]
    assert files.objects == {(user_b, "atc_1")}


async def test_failed_byte_delete_does_not_stop_the_others_and_a_retried_delete_thread_cleans_up(
    store: UserStore, user_a: str, files: RecordingFiles
) -> None:
    context = f.ctx(user_a)
    await store.threads.save_thread(f.thread("thr_1"), context)
    for attachment_id in ("atc_1", "atc_2", "atc_3"):
        await store.threads.save_attachment(f.file_attachment(attachment_id, "thr_1"), context)
        files.put(user_a, attachment_id)
    await store.threads.save_attachment(f.file_attachment("atc_other"), context)  # not in the thread
    files.put(user_a, "atc_other")
    files.fail_once.add("atc_2")

    with pytest.raises(OSError, match="storage hiccup"):
        await store.threads.delete_thread("thr_1", context)

    assert {aid for _, aid in files.deletes} == {"atc_1", "atc_2", "atc_3"}  # one failure stopped nothing
    assert files.objects == {(user_a, "atc_2"), (user_a, "atc_other")}

    await store.threads.delete_thread("thr_1", context)

    assert files.objects == {(user_a, "atc_other")}
    with pytest.raises(NotFoundError):
        await store.threads.load_thread("thr_1", context)
    assert [a["id"] for a in (await store.export_user(user_a))["attachments"]] == ["atc_other"]
