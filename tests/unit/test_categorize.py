"""The deterministic categoriser: known categories win, otherwise the statement decides."""

from __future__ import annotations

import pytest

from memory.categorize import DEFAULT_CATEGORY, KNOWN_CATEGORIES, categorize, infer_category
from memory.models import normalize_category


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("hobby", "I love reading books", "interest"),
        ("", "I love reading books", "interest"),
        ("favourite colour", "my favourite colour is blue", "preference"),
        ("favorite_food", "sushi", "preference"),
        ("coffee", "I prefer tea over coffee", "preference"),
        ("mushrooms", "I don't like mushrooms", "preference"),
        ("sister", "my sister is Maya", "relationship"),
        ("", "my sister is Maya", "relationship"),
        ("husband", "Tom", "relationship"),
        ("dog", "my dog is called Rex", "relationship"),
        ("allergy", "I'm allergic to nuts", "fact"),
        ("", "I’m allergic to peanuts", "fact"),
        ("", "I am lactose intolerant", "fact"),
        ("name", "Sam", "personal"),
        ("home", "I live in Lisbon", "personal"),
        ("birthday", "March 3rd", "personal"),
        ("job", "I work at Acme as a nurse", "work"),
        ("", "I'm a student at the university", "work"),
        ("marathon", "I want to run a marathon", "goal"),
        ("", "I'm learning Spanish", "goal"),
        ("music", "I enjoy jazz", "interest"),
        ("sky", "the sky was grey yesterday", DEFAULT_CATEGORY),
    ],
)
def test_statements_without_category(key: str, value: str, expected: str) -> None:
    assert categorize(key, value) == expected
    assert categorize(key, value, None) == expected
    assert categorize(key, value, "") == expected


@pytest.mark.parametrize("category", sorted(KNOWN_CATEGORIES))
def test_known_category_from_the_model_wins(category: str) -> None:
    assert categorize("sister", "my sister is Maya", category) == category
    assert categorize("sister", "my sister is Maya", f"  {category.upper()} ") == category


@pytest.mark.parametrize(
    ("given", "expected"),
    [("Hobbies", "interest"), ("family", "relationship"), ("likes", "preference"), ("health", "fact"), ("job", "work")],
)
def test_common_aliases_map_to_known_categories(given: str, expected: str) -> None:
    assert categorize("x", "the sky", given) == expected


@pytest.mark.parametrize("given", ["bogus", "travel", "!!!", "a" * 100, "12abc"])
def test_unknown_category_falls_back_to_the_statement(given: str) -> None:
    assert categorize("favourite colour", "blue", given) == "preference"
    assert categorize("note", "the sky is grey", given) == DEFAULT_CATEGORY


def test_every_result_is_a_valid_stored_category() -> None:
    for category in KNOWN_CATEGORIES:
        assert normalize_category(category) == category
    assert DEFAULT_CATEGORY in KNOWN_CATEGORIES


def test_deterministic() -> None:
    statements = ["I love hiking with my brother", "my favourite band", "I'm allergic to cats"]
    first = [infer_category(s) for s in statements]
    assert all([infer_category(s) for s in statements] == first for _ in range(5))
    # health beats pets, relatives beat "love"
    assert first == ["relationship", "preference", "fact"]
