"""The indexed `memories.search` answers exactly what the shared ranker answers over all memories.

Random histories of remember / update / forget / forget_from (a small vocabulary with inflections,
so terms collide, repeat across fields and tie on score) run against every backend;
after each history, every query must return the memories `memory.ranking.rank`
returns for the user's full list, in the same order, for several limits.
"""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.ranking import rank
from stores import UserStore

WORDS = [
    "tea",
    "teas",
    "coffee",
    "likes",
    "liked",
    "book",
    "books",
    "jazz",
    "music",
    "sister",
    "maya",
    "lisbon",
    "blue",
    "colour",
    "running",
    "run",
    "dog's",
    "the",
    "my",
    "7",
    "café",
    "preference",
    "work",
]
CATEGORIES = ["preference", "fact", "music", "work", "tea"]
KEYS = ["favourite tea", "sister", "music", "book club", "dog", "work", "7", "colour", "run club", "café"]

THREADS = ["thr_a", "thr_b", ""]  # "" = learned outside a conversation
_text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
_thread = st.sampled_from(THREADS)
_remember = st.tuples(st.just("remember"), st.sampled_from(CATEGORIES), st.sampled_from(KEYS), _text, _thread)
_forget = st.tuples(st.just("forget"), st.sampled_from(CATEGORIES), st.sampled_from(KEYS), st.just(""), st.just(""))
_forget_from = st.tuples(st.just("forget_from"), st.just(""), st.just(""), st.just(""), st.sampled_from(THREADS[:2]))
HISTORY = st.lists(st.one_of(_remember, _remember, _remember, _forget, _forget_from), min_size=1, max_size=30)
Operation = tuple[str, str, str, str, str]
QUERIES = st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=4).map(" ".join), min_size=1, max_size=5)
PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def _apply(store: UserStore, user_id: str, history: list[Operation]) -> None:
    for operation, category, key, value, thread_id in history:
        if operation == "remember":
            await store.memories.remember(user_id, category, key, value, thread_id=thread_id or None)
        elif operation == "forget":
            await store.memories.forget(user_id, category, key)
        else:
            await store.memories.forget_from(user_id, thread_id)


# more terms than the packed field codes hold (memory.ranking.MAX_PACKED_TERMS): the long-query path
LONG_QUERY = " ".join(WORDS + [str(number) for number in range(10, 30)])


async def _assert_search_is_rank(store: UserStore, user_id: str, queries: list[str]) -> None:
    everything = await store.memories.list(user_id)
    for query in [*queries, LONG_QUERY]:
        for limit in (1, 3, 100):
            got = await store.memories.search(user_id, query, limit=limit)
            assert got == rank(everything, query, limit), (query, limit)


@PROPERTY_SETTINGS
@given(history=HISTORY, queries=QUERIES)
async def test_search_equals_the_ranker_over_all_memories(
    store: UserStore, history: list[Operation], queries: list[str]
) -> None:
    user_id = str(uuid.uuid4())
    neighbour = str(uuid.uuid4())
    await _apply(store, user_id, history)
    await _apply(store, neighbour, history[::-1])  # another user's memories must not change the statistics

    await _assert_search_is_rank(store, user_id, queries)
    await _assert_search_is_rank(store, neighbour, queries)

    await store.forget_user(user_id)
    assert [await store.memories.search(user_id, query, limit=100) for query in queries] == [[] for _ in queries]
    await _assert_search_is_rank(store, neighbour, queries)
    await store.forget_user(neighbour)
