"""Memory field rules: normalisation that makes upserts hit one row, and clear rejections."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from memory.models import (
    MAX_VALUE_LENGTH,
    Memory,
    Profile,
    normalize_category,
    normalize_key,
    validate_source,
    validate_value,
)


@pytest.mark.parametrize("raw", ["preference", "Preference", " PREFERENCE ", "preference\n"])
def test_category_is_lower_case_and_trimmed(raw: str) -> None:
    assert normalize_category(raw) == "preference"


def test_category_spaces_become_underscores() -> None:
    assert normalize_category("Food  Likes") == "food_likes"


@pytest.mark.parametrize("raw", ["", "  ", "1st", "_x", "a" * 33, "pref:*", "pref/x", "préférence", None, 3])
def test_bad_category_is_rejected_with_guidance(raw: object) -> None:
    with pytest.raises(ValueError, match="category"):
        normalize_category(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw", ["favourite_colour", "Favourite Colour", "  FAVOURITE   colour ", "favourite\tcolour", "Favourite_Colour"]
)
def test_key_forms_collapse_to_one(raw: str) -> None:
    assert normalize_key(raw) == "favourite_colour"


def test_key_keeps_unicode_letters_in_one_normal_form() -> None:
    composed, decomposed = "café", "cafe\u0301"
    assert normalize_key(composed) == normalize_key(decomposed) == "café"
    assert normalize_key("Mum's birthday") == "mum's_birthday"


@pytest.mark.parametrize("raw", ["", "   ", "a/b", "k{1}", "k*", "x" * 129, "new\x00line", None])
def test_bad_key_is_rejected_with_guidance(raw: object) -> None:
    with pytest.raises(ValueError, match="key"):
        normalize_key(raw)  # type: ignore[arg-type]


def test_value_is_trimmed_and_limited() -> None:
    assert validate_value("  teal \n") == "teal"
    assert validate_value("x" * MAX_VALUE_LENGTH) == "x" * MAX_VALUE_LENGTH
    assert validate_value(" " + "x" * MAX_VALUE_LENGTH + " ") == "x" * MAX_VALUE_LENGTH


@pytest.mark.parametrize(
    ("raw", "message"),
    [("", "empty"), (" \t\n", "empty"), ("x" * 2001, "2001 characters"), ("a\x00b", "NUL"), (None, "string")],
)
def test_bad_value_says_what_is_wrong(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_value(raw)  # type: ignore[arg-type]


def test_source_is_optional_and_short() -> None:
    assert validate_source(None) is None
    assert validate_source(" voice ") == "voice"
    for bad in ("", "  ", "x" * 65, "a\x00"):
        with pytest.raises(ValueError, match="source"):
            validate_source(bad)


def test_memory_and_profile_are_immutable_and_json_friendly() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    memory = Memory(id="m", user_id="u", category="c", key="k", value="v", created_at=now, updated_at=now)
    profile = Profile(id="u", created_at=now, last_seen_at=now)

    with pytest.raises(ValidationError):
        setattr(memory, "value", "changed")  # noqa: B010 - frozen model must refuse
    assert Memory.model_validate_json(memory.model_dump_json()) == memory
    assert Profile.model_validate_json(profile.model_dump_json()) == profile
    assert profile.is_first_login is False and profile.identity is None
