"""Provenance and consent: where each memory came from, forgetting one conversation, the memory switch."""

from __future__ import annotations

import asyncio

import pytest

from memory.settings import get_settings
from stores import UserStore, open_store


async def test_remember_records_source_thread_and_item(store: UserStore, user_a: str) -> None:
    saved = await store.memories.remember(
        user_a, "relationship", "sister", "Maya", source="voice", thread_id="thr_call1", item_id="msg_turn3"
    )

    loaded = await store.memories.get(user_a, "relationship", "sister")
    listed = await store.memories.list(user_a)
    exported = (await store.export_user(user_a))["memories"]

    assert loaded == saved
    assert (saved.source, saved.thread_id, saved.item_id) == ("voice", "thr_call1", "msg_turn3")
    assert listed == [saved]
    assert [(m["source"], m["thread_id"], m["item_id"]) for m in exported] == [("voice", "thr_call1", "msg_turn3")]


async def test_memory_without_provenance_reads_back_none(store: UserStore, user_a: str) -> None:
    saved = await store.memories.remember(user_a, "preference", "tea", "oolong")

    loaded = await store.memories.get(user_a, "preference", "tea")

    assert loaded is not None and (loaded.source, loaded.thread_id, loaded.item_id) == (None, None, None)
    assert loaded == saved


async def test_update_takes_the_provenance_of_the_latest_value(store: UserStore, user_a: str) -> None:
    first = await store.memories.remember(
        user_a, "work", "employer", "Acme", source="voice", thread_id="thr_one", item_id="itm_1"
    )
    await asyncio.sleep(0.002)

    second = await store.memories.remember(user_a, "work", "employer", "Globex", source="chat", thread_id="thr_two")

    assert second.id == first.id and second.created_at == first.created_at
    assert (second.value, second.source, second.thread_id, second.item_id) == ("Globex", "chat", "thr_two", None)
    assert await store.memories.get(user_a, "work", "employer") == second


async def test_forget_from_forgets_one_conversation_of_one_user(store: UserStore, user_a: str, user_b: str) -> None:
    await store.memories.remember(user_a, "relationship", "sister", "Maya", source="voice", thread_id="thr_call")
    await store.memories.remember(user_a, "pet", "dog", "Rex", source="voice", thread_id="thr_call", item_id="m_2")
    kept_other_thread = await store.memories.remember(user_a, "work", "job", "baker", source="chat", thread_id="thr_x")
    kept_no_thread = await store.memories.remember(user_a, "preference", "tea", "oolong", source="api")
    kept_b = await store.memories.remember(user_b, "pet", "dog", "Bob's dog", thread_id="thr_call")

    forgotten = await store.memories.forget_from(user_a, "thr_call", source="api")

    assert forgotten == 2
    remaining = {(m.category, m.key) for m in await store.memories.list(user_a)}
    assert remaining == {(kept_other_thread.category, kept_other_thread.key), ("preference", "tea")}
    assert kept_no_thread in await store.memories.list(user_a)
    assert await store.memories.list(user_b) == [kept_b]
    assert await store.memories.forget_from(user_a, "thr_call") == 0


async def test_forget_from_a_thread_moved_on_keeps_memories_updated_elsewhere(store: UserStore, user_a: str) -> None:
    await store.memories.remember(user_a, "work", "employer", "Acme", thread_id="thr_old")
    await store.memories.remember(user_a, "work", "employer", "Globex", thread_id="thr_new")

    assert await store.memories.forget_from(user_a, "thr_old") == 0
    current = await store.memories.get(user_a, "work", "employer")
    assert current is not None and current.value == "Globex"


async def test_forget_accepts_a_source(store: UserStore, user_a: str) -> None:
    await store.memories.remember(user_a, "preference", "tea", "oolong")

    assert await store.memories.forget(user_a, "preference", "tea", source="chat") is True
    assert await store.memories.get(user_a, "preference", "tea") is None


@pytest.mark.parametrize("bad", ["", "thr 1", "thr:1", "a" * 129, "thr/1"])
async def test_bad_thread_or_item_ids_are_rejected_before_storing(store: UserStore, user_a: str, bad: str) -> None:
    with pytest.raises(ValueError, match="thread id"):
        await store.memories.remember(user_a, "pet", "dog", "Rex", thread_id=bad)
    with pytest.raises(ValueError, match="item id"):
        await store.memories.remember(user_a, "pet", "dog", "Rex", item_id=bad)
    with pytest.raises(ValueError, match="thread id"):
        await store.memories.forget_from(user_a, bad)
    assert await store.memories.list(user_a) == []


async def test_memory_is_on_for_new_profiles_by_default(store: UserStore, user_a: str) -> None:
    created = await store.profiles.ensure(user_a, identity="alice")

    assert created.memory_enabled is True
    stored = await store.profiles.get(user_a)
    assert stored is not None and stored.memory_enabled is True


async def test_set_memory_enabled_switches_and_persists_for_one_user(
    store: UserStore, user_a: str, user_b: str
) -> None:
    await store.profiles.ensure(user_a, identity="alice", email="alice@example.com")
    await store.profiles.ensure(user_b, identity="bob")

    off = await store.profiles.set_memory_enabled(user_a, False)

    assert off.memory_enabled is False and off.is_first_login is False
    assert (off.identity, off.email) == ("alice", "alice@example.com")
    stored = await store.profiles.get(user_a)
    assert stored is not None and stored.memory_enabled is False
    again = await store.profiles.ensure(user_a)
    assert again.memory_enabled is False, "a later visit must not switch memory back on"
    other = await store.profiles.get(user_b)
    assert other is not None and other.memory_enabled is True
    assert (await store.export_user(user_a))["profile"]["memory_enabled"] is False

    on = await store.profiles.set_memory_enabled(user_a, True)
    assert on.memory_enabled is True
    stored = await store.profiles.get(user_a)
    assert stored is not None and stored.memory_enabled is True


async def test_set_memory_enabled_creates_a_missing_profile(store: UserStore, user_a: str) -> None:
    created = await store.profiles.set_memory_enabled(user_a, False)

    assert created.id == user_a and created.memory_enabled is False and created.is_first_login is False
    stored = await store.profiles.get(user_a)
    assert stored is not None and stored.memory_enabled is False
    visit = await store.profiles.ensure(user_a, identity="alice")
    assert visit.memory_enabled is False and visit.identity == "alice"


@pytest.mark.parametrize("bad", [None, "false", 0, 1])
async def test_set_memory_enabled_takes_only_booleans(store: UserStore, user_a: str, bad: object) -> None:
    with pytest.raises(ValueError, match="memory_enabled"):
        await store.profiles.set_memory_enabled(user_a, bad)  # type: ignore[arg-type]
    assert await store.profiles.get(user_a) is None


async def test_memory_default_enabled_setting_applies_to_new_profiles(
    store_url: str, user_a: str, user_b: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_store(store_url) as before:
        existing = await before.profiles.ensure(user_b)
    shared = store_url != "memory://"  # each memory:// store has its own data
    monkeypatch.setenv("MEMORY_DEFAULT_ENABLED", "false")
    get_settings.cache_clear()

    async with await open_store(store_url) as opened:
        created = await opened.profiles.ensure(user_a)
        stored = await opened.profiles.get(user_a)
        kept = await opened.profiles.get(user_b)

    assert created.memory_enabled is False
    assert stored is not None and stored.memory_enabled is False
    assert existing.memory_enabled is True
    if shared:
        assert kept is not None and kept.memory_enabled is True
