"""Memories: upsert by (user, category, key), normalisation, limits, list order, ranked search."""

from __future__ import annotations

import asyncio

import pytest

from memory.ranking import rank
from stores import UserStore

# Distinct topics, so relevance has one right answer per query.
FACTS = [
    ("preference", "favourite colour", "teal, like the sea"),
    ("personal", "pet name", "a beagle called Rex"),
    ("work", "job", "software engineer at a bakery chain"),
    ("preference", "food", "loves spicy ramen"),
    ("travel", "next trip", "Lisbon in October"),
    ("personal", "birthday", "12 March"),
    ("hobby", "books", "reads science fiction novels"),
]


async def _remember_all(store: UserStore, user_id: str) -> None:
    for category, key, value in FACTS:
        await store.memories.remember(user_id, category, key, value, source="voice")
        await asyncio.sleep(0.002)  # distinct updated_at, so "newest first" has one answer


async def test_remember_round_trips(store: UserStore, user_a: str) -> None:
    saved = await store.memories.remember(user_a, "preference", "favourite colour", "teal", source="chat")

    loaded = await store.memories.get(user_a, "preference", "favourite colour")

    assert loaded == saved
    assert (saved.user_id, saved.category, saved.key, saved.value, saved.source) == (
        user_a,
        "preference",
        "favourite_colour",
        "teal",
        "chat",
    )
    assert saved.created_at == saved.updated_at and saved.created_at.tzinfo is not None
    assert await store.memories.list(user_a) == [saved]


async def test_remember_upserts_keeping_id_and_created_at(store: UserStore, user_a: str) -> None:
    first = await store.memories.remember(user_a, "preference", "favourite colour", "teal")
    await asyncio.sleep(0.002)

    second = await store.memories.remember(user_a, "Preference", "Favourite  Colour", "  crimson  ", source="chat")

    assert second.id == first.id and second.created_at == first.created_at
    assert second.value == "crimson" and second.source == "chat"
    assert second.updated_at > first.updated_at
    assert await store.memories.list(user_a) == [second]
    assert await store.memories.get(user_a, "PREFERENCE", "favourite_colour") == second


@pytest.mark.parametrize(
    ("category", "key"),
    [("Preference", "Favourite Colour"), (" preference ", "favourite_colour"), ("PREFERENCE", "FAVOURITE   COLOUR")],
)
async def test_category_and_key_are_case_insensitive(store: UserStore, user_a: str, category: str, key: str) -> None:
    stored = await store.memories.remember(user_a, "preference", "favourite_colour", "teal")

    assert await store.memories.get(user_a, category, key) == stored
    assert await store.memories.forget(user_a, category, key) is True
    assert await store.memories.get(user_a, "preference", "favourite_colour") is None


async def test_value_length_limits(store: UserStore, user_a: str) -> None:
    assert (await store.memories.remember(user_a, "fact", "one", "x")).value == "x"
    assert len((await store.memories.remember(user_a, "fact", "long", "y" * 2000)).value) == 2000

    for bad in ("y" * 2001, "", "   \n\t ", "a\x00b"):
        with pytest.raises(ValueError):
            await store.memories.remember(user_a, "fact", "bad", bad)
    assert await store.memories.get(user_a, "fact", "bad") is None
    long = await store.memories.get(user_a, "fact", "long")
    assert long is not None and long.value == "y" * 2000


@pytest.mark.parametrize(
    ("category", "key"),
    [("", "k"), ("1abc", "k"), ("a" * 33, "k"), ("pref:*", "k"), ("pref", ""), ("pref", "k" * 129), ("pref", "a/b")],
)
async def test_bad_category_or_key_is_rejected(store: UserStore, user_a: str, category: str, key: str) -> None:
    with pytest.raises(ValueError):
        await store.memories.remember(user_a, category, key, "v")
    assert await store.memories.list(user_a) == []


async def test_value_keeps_unicode_and_quotes(store: UserStore, user_a: str) -> None:
    value = "Grüße 🧠 \"quoted\" 'single' \\ back; DROP TABLE memories; --"
    await store.memories.remember(user_a, "fact", "tricky", value)

    loaded = await store.memories.get(user_a, "fact", "tricky")
    assert loaded is not None and loaded.value == value


async def test_forget_returns_true_then_false(store: UserStore, user_a: str) -> None:
    await store.memories.remember(user_a, "fact", "a", "1")
    await store.memories.remember(user_a, "fact", "b", "2")

    assert await store.memories.forget(user_a, "fact", "a") is True
    assert await store.memories.forget(user_a, "fact", "a") is False
    assert await store.memories.forget(user_a, "fact", "never") is False
    assert [m.key for m in await store.memories.list(user_a)] == ["b"]


async def test_list_newest_first_with_category_filter(store: UserStore, user_a: str) -> None:
    await _remember_all(store, user_a)
    keys = [m.key for m in await store.memories.list(user_a)]
    assert keys == [k.replace(" ", "_") for _, k, _ in reversed(FACTS)]

    await store.memories.remember(user_a, "preference", "favourite colour", "navy")  # update moves it to the top
    listed = await store.memories.list(user_a)
    assert listed[0].key == "favourite_colour" and len(listed) == len(FACTS)

    preferences = await store.memories.list(user_a, category="Preference")
    assert [m.key for m in preferences] == ["favourite_colour", "food"]
    assert await store.memories.list(user_a, category="unknown") == []


@pytest.mark.parametrize(
    ("query", "expected_key"),
    [
        ("what colour do I like", "favourite_colour"),
        ("do I have a pet?", "pet_name"),
        ("what is my job", "job"),
        ("which book should I read next", "books"),
        ("when is my birthday", "birthday"),
        ("where am I travelling, my trip", "next_trip"),
        ("RAMEN", "food"),
    ],
)
async def test_search_puts_the_relevant_memory_first(
    store: UserStore, user_a: str, query: str, expected_key: str
) -> None:
    await _remember_all(store, user_a)

    results = await store.memories.search(user_a, query, limit=3)

    assert results and results[0].key == expected_key


async def test_search_order_is_the_shared_ranker_order(store: UserStore, user_a: str) -> None:
    await _remember_all(store, user_a)
    await store.memories.remember(user_a, "preference", "drink", "likes green tea, not coffee")
    everything = await store.memories.list(user_a)

    for query in ("what do I like", "preference", "favourite food and colour", "rex the beagle", "zzz", ""):
        for limit in (1, 2, 5, 50):
            got = await store.memories.search(user_a, query, limit=limit)
            assert [m.id for m in got] == [m.id for m in rank(everything, query, limit)], (query, limit)
            assert len(got) <= limit


async def test_search_respects_limit_and_skips_unrelated(store: UserStore, user_a: str) -> None:
    await _remember_all(store, user_a)

    assert len(await store.memories.search(user_a, "preference", limit=1)) == 1
    assert len(await store.memories.search(user_a, "preference", limit=10)) == 2  # only the two preferences match
    assert await store.memories.search(user_a, "quantum chromodynamics") == []
    assert await store.memories.search(user_a, "") == []


async def test_results_never_include_other_users(store: UserStore, user_a: str, user_b: str) -> None:
    await _remember_all(store, user_a)
    await store.memories.remember(user_b, "preference", "favourite colour", "bob likes orange")

    for result in (
        await store.memories.search(user_a, "favourite colour orange", limit=50),
        await store.memories.list(user_a),
        await store.memories.list(user_a, "preference"),
    ):
        assert {m.user_id for m in result} == {user_a}
        assert all("bob" not in m.value for m in result)
    assert [m.value for m in await store.memories.list(user_b)] == ["bob likes orange"]
    own = await store.memories.get(user_a, "preference", "favourite colour")
    assert own is not None and own.value == "teal, like the sea"
