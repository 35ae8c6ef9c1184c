"""Races a real server produces: concurrent appends, first logins and memory upserts."""

from __future__ import annotations

import asyncio
import random

from stores import UserStore
from tests.contract import factories as f


async def test_200_concurrent_adds_all_land_once_in_order(store: UserStore, user_a: str) -> None:
    await store.threads.save_thread(f.thread("thr_race"), f.ctx(user_a))
    items = [f.message(i, "thr_race", f.at(i)) for i in range(200)]
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)

    await asyncio.gather(*(store.threads.add_thread_item("thr_race", it, f.ctx(user_a)) for it in shuffled))

    assert await f.all_items(store, user_a, "thr_race", "asc") == items
    assert await f.all_items(store, user_a, "thr_race", "desc", limit=50) == items[::-1]


async def test_concurrent_upserts_of_one_item_keep_one_copy(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    await store.threads.save_thread(f.thread("thr_race"), context)
    await store.threads.add_thread_item("thr_race", f.message(0, "thr_race", f.at(0)), context)
    versions = [f.user_message("msg_0001", "thr_race", f.at(1), text=f"v{i}") for i in range(50)]
    await store.threads.add_thread_item("thr_race", f.message(2, "thr_race", f.at(2)), context)

    await asyncio.gather(
        *(
            (store.threads.add_thread_item if i % 2 else store.threads.save_item)("thr_race", v, context)
            for i, v in enumerate(versions)
        )
    )

    items = await f.all_items(store, user_a, "thr_race")
    assert f.ids(items) == ["msg_0000", "msg_0001", "msg_0002"]
    assert items[1] in versions


async def test_concurrent_threads_for_many_users_stay_apart(store: UserStore) -> None:
    users = [f"user-{i}" for i in range(20)]

    async def fill(user_id: str) -> None:
        await store.threads.save_thread(f.thread("thr_1", title=user_id), f.ctx(user_id))
        await asyncio.gather(
            *(store.threads.add_thread_item("thr_1", f.message(i, "thr_1", f.at(i)), f.ctx(user_id)) for i in range(5))
        )

    await asyncio.gather(*(fill(u) for u in users))

    for user_id in users:
        assert (await store.threads.load_thread("thr_1", f.ctx(user_id))).title == user_id
        assert f.ids(await f.all_items(store, user_id, "thr_1")) == [f"msg_{i:04d}" for i in range(5)]


async def test_100_concurrent_ensure_create_one_profile(store: UserStore, user_a: str) -> None:
    results = await asyncio.gather(*(store.profiles.ensure(user_a, identity="alice") for _ in range(100)))

    assert sum(p.is_first_login for p in results) == 1
    assert len({p.created_at for p in results}) == 1
    assert {p.id for p in results} == {user_a}
    stored = await store.profiles.get(user_a)
    assert stored is not None and stored.created_at == results[0].created_at
    assert (await store.export_user(user_a))["profile"]["id"] == user_a


async def test_concurrent_remember_same_key_keeps_one_memory(store: UserStore, user_a: str) -> None:
    values = [f"value {i}" for i in range(30)]

    results = await asyncio.gather(
        *(store.memories.remember(user_a, "Preference", "Favourite Colour", v) for v in values)
    )

    assert len({m.id for m in results}) == 1
    assert len({m.created_at for m in results}) == 1
    listed = await store.memories.list(user_a)
    assert len(listed) == 1 and listed[0].id == results[0].id and listed[0].value in values


async def test_concurrent_remember_different_keys_all_kept(store: UserStore, user_a: str) -> None:
    await asyncio.gather(*(store.memories.remember(user_a, "fact", f"k{i}", f"v{i}") for i in range(40)))

    assert sorted(m.key for m in await store.memories.list(user_a)) == sorted(f"k{i}" for i in range(40))
