"""The shared memory ranker: relevance order, stable tie-breaks, word forms, no false matches."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from memory.models import Memory
from memory.ranking import rank, tokenize

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def mem(key: str, value: str, category: str = "fact", *, age_s: int = 0, mid: str | None = None) -> Memory:
    moment = T0 - timedelta(seconds=age_s)
    return Memory(
        id=mid or f"mem_{key}",
        user_id="u",
        category=category,
        key=key,
        value=value,
        created_at=moment,
        updated_at=moment,
    )


MEMORIES = [
    mem("favourite_colour", "teal", "preference", age_s=1),
    mem("pet_name", "a beagle called Rex", "personal", age_s=2),
    mem("job", "software engineer", "work", age_s=3),
    mem("drink", "likes green tea, not coffee", "preference", age_s=4),
    mem("books", "reads science fiction", "hobby", age_s=5),
]


@pytest.mark.parametrize(
    "word_forms",
    [
        ["like", "likes", "liked", "liking"],
        ["love", "loves", "loved", "loving"],
        ["book", "books"],
        ["story", "stories"],
        ["box", "boxes"],
        ["travel", "travelling", "travels"],
        ["class", "classes"],
    ],
)
def test_word_forms_share_one_stem(word_forms: list[str]) -> None:
    assert len({tuple(tokenize(w)) for w in word_forms}) == 1


def test_tokenize_drops_stop_words_single_letters_and_punctuation() -> None:
    assert tokenize("What is MY dog's name?") == ["dog", "nam"]  # stems, not words
    assert tokenize("I'm... the  a   an") == []
    assert tokenize("room 7, floor 12") == ["room", "7", "floor", "12"]


def test_most_relevant_memory_comes_first() -> None:
    assert rank(MEMORIES, "what colour do I like")[0].key == "favourite_colour"
    assert rank(MEMORIES, "does she love tea")[0].key == "drink"
    assert rank(MEMORIES, "my pet")[0].key == "pet_name"
    assert rank(MEMORIES, "which books")[0].key == "books"


def test_inflected_query_matches_value() -> None:
    results = rank(MEMORIES, "liking coffees")
    assert [m.key for m in results] == ["drink"]


def test_non_matching_memories_are_left_out() -> None:
    assert rank(MEMORIES, "quantum chromodynamics") == []
    assert rank(MEMORIES, "what is the") == []  # only stop words
    assert rank(MEMORIES, "") == []
    assert [m.key for m in rank(MEMORIES, "rex's job")] in (["job", "pet_name"], ["pet_name", "job"])


def test_key_beats_category_beats_value() -> None:
    pool = [
        mem("other", "mentions tea here", "misc", mid="m_value"),
        mem("other2", "nothing", "tea", mid="m_category"),
        mem("tea", "nothing", "misc", mid="m_key"),
    ]
    assert [m.id for m in rank(pool, "tea")] == ["m_key", "m_category", "m_value"]


def test_rare_term_outweighs_common_term() -> None:
    pool = [mem(f"k{i}", f"music item {i}", "hobby") for i in range(5)] + [mem("special", "jazz music", "hobby")]
    assert rank(pool, "jazz music")[0].key == "special"


def test_limit_is_respected() -> None:
    assert len(rank(MEMORIES, "preference", limit=1)) == 1
    assert len(rank(MEMORIES, "preference", limit=10)) == 2
    assert rank(MEMORIES, "preference", limit=0) == []
    assert rank(MEMORIES, "preference", limit=-3) == []


def test_ties_go_to_newest_then_id_whatever_the_input_order() -> None:
    pool = [
        mem("a", "tea", age_s=5, mid="m_old"),
        mem("b", "tea", age_s=1, mid="m_new_z"),
        mem("c", "tea", age_s=1, mid="m_new_a"),
    ]
    expected = ["m_new_a", "m_new_z", "m_old"]
    shuffler = random.Random(3)
    for _ in range(10):
        shuffler.shuffle(pool)
        assert [m.id for m in rank(pool, "tea", limit=5)] == expected


def test_same_instant_in_different_offsets_ties_the_same_way() -> None:
    plus2 = timezone(timedelta(hours=2))
    a = mem("a", "tea", mid="m_b")
    b = mem("b", "tea", mid="m_a").model_copy(update={"updated_at": T0.astimezone(plus2)})
    assert [m.id for m in rank([a, b], "tea")] == ["m_a", "m_b"]
