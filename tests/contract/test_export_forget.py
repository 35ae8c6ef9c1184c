"""Whole-user export (everything of one user, nobody else's) and erase (all of it, nobody else's)."""

from __future__ import annotations

import json

import pytest

from stores import NotFoundError, UserStore
from tests.contract import factories as f


async def _seed(store: UserStore, user_id: str, label: str) -> None:
    context = f.ctx(user_id)
    await store.profiles.ensure(user_id, identity=f"{label}-identity", email=f"{label}@example.com")
    await store.memories.remember(user_id, "preference", "colour", f"{label} colour")
    await store.memories.remember(user_id, "fact", "city", f"{label} city")
    for thread_index in range(2):
        thread_id = f"thr_{thread_index}"
        await store.threads.save_thread(
            f.thread(thread_id, f.at(thread_index), title=f"{label} {thread_index}"), context
        )
        for i, (kind, build) in enumerate(f.ITEM_FACTORIES.items()):
            await store.threads.add_thread_item(thread_id, build(f"itm_{kind}", thread_id, f.at(100 - i)), context)
    await store.threads.save_attachment(f.file_attachment("atc_loose", name=f"{label}.pdf"), context)
    await store.threads.save_attachment(f.image_attachment("atc_bound", "thr_0"), context)


async def test_export_contains_everything_of_one_user(store: UserStore, user_a: str, user_b: str) -> None:
    await _seed(store, user_a, "alice")
    await _seed(store, user_b, "bob")

    export = await store.export_user(user_a)
    text = json.dumps(export)

    assert "bob" not in text and user_b not in text
    assert export["user_id"] == user_a
    assert export["profile"]["id"] == user_a and export["profile"]["email"] == "alice@example.com"
    assert sorted((m["category"], m["key"], m["value"]) for m in export["memories"]) == [
        ("fact", "city", "alice city"),
        ("preference", "colour", "alice colour"),
    ]
    assert [t["id"] for t in export["threads"]] == ["thr_0", "thr_1"]
    assert export["threads"][0]["title"] == "alice 0"
    expected_items = [
        build(f"itm_{kind}", "thr_0", f.at(100 - i)) for i, (kind, build) in enumerate(f.ITEM_FACTORIES.items())
    ][::-1]
    assert export["threads"][0]["items"] == [json.loads(item.model_dump_json()) for item in expected_items]
    assert sorted(a["id"] for a in export["attachments"]) == ["atc_bound", "atc_loose"]
    assert json.loads(text) == export


async def test_export_of_unknown_user_is_empty(store: UserStore, user_a: str) -> None:
    export = await store.export_user(user_a)

    assert export == {
        "user_id": user_a,
        "profile": None,
        "memories": [],
        "memory_changes": [],
        "threads": [],
        "attachments": [],
    }


async def test_forget_user_removes_everything_and_only_that_user(store: UserStore, user_a: str, user_b: str) -> None:
    await _seed(store, user_a, "alice")
    await _seed(store, user_b, "bob")
    bob_before = await store.export_user(user_b)

    await store.forget_user(user_a)

    a = f.ctx(user_a)
    assert await store.export_user(user_a) == {
        "user_id": user_a,
        "profile": None,
        "memories": [],
        "memory_changes": [],
        "threads": [],
        "attachments": [],
    }
    assert await store.profiles.get(user_a) is None
    assert await store.memories.history(user_a) == []
    assert await store.memories.list(user_a) == []
    assert await store.memories.search(user_a, "alice colour city") == []
    assert (await store.threads.load_threads(20, None, "desc", a)).data == []
    for thread_id in ("thr_0", "thr_1"):
        with pytest.raises(NotFoundError):
            await store.threads.load_thread(thread_id, a)
        assert (await store.threads.load_thread_items(thread_id, None, 20, "asc", a)).data == []
        with pytest.raises(NotFoundError):
            await store.threads.load_item(thread_id, "itm_widget", a)
    for attachment_id in ("atc_loose", "atc_bound"):
        with pytest.raises(NotFoundError):
            await store.threads.load_attachment(attachment_id, a)

    assert await store.export_user(user_b) == bob_before
    await store.forget_user(user_a)  # idempotent


async def test_user_starts_fresh_after_forget(store: UserStore, user_a: str) -> None:
    await _seed(store, user_a, "alice")
    await store.forget_user(user_a)

    profile = await store.profiles.ensure(user_a)
    await store.threads.save_thread(f.thread("thr_0"), f.ctx(user_a))

    assert profile.is_first_login and profile.identity is None
    assert await f.all_items(store, user_a, "thr_0") == []
    assert await store.memories.get(user_a, "preference", "colour") is None
