"""identity_to_uuid against values computed independently with Python's uuid module."""

from __future__ import annotations

import uuid

import pytest

from memory import identity_to_uuid
from memory.settings import get_settings

# uuid5(NAMESPACE_DNS, ...) computed once with the standard library, written out literally
KNOWN = {
    "alice@example.com": "edabafbb-61ad-51d6-9fd8-e976c892a731",
}


@pytest.mark.parametrize(
    "identity",
    ["alice@example.com", "bob", "Bob", "user_123", "ünïcødé-名前", "a" * 512, "with space", "+15551234567"],
)
def test_default_namespace_is_uuid5_dns(identity: str) -> None:
    assert identity_to_uuid(identity) == str(uuid.uuid5(uuid.NAMESPACE_DNS, identity))


def test_literal_value_is_stable_across_releases() -> None:
    for identity, expected in KNOWN.items():
        assert identity_to_uuid(identity) == expected
        assert str(uuid.uuid5(uuid.NAMESPACE_DNS, identity)) == expected


def test_case_and_whitespace_are_significant() -> None:
    assert identity_to_uuid("Alice") != identity_to_uuid("alice")
    assert identity_to_uuid(" alice") == str(uuid.uuid5(uuid.NAMESPACE_DNS, " alice"))


def test_explicit_namespace() -> None:
    namespace = uuid.uuid4()
    assert identity_to_uuid("carol", namespace) == str(uuid.uuid5(namespace, "carol"))
    assert identity_to_uuid("carol", namespace) != identity_to_uuid("carol")


def test_namespace_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = uuid.UUID("6ba7b812-9dad-11d1-80b4-00c04fd430c8")  # NAMESPACE_OID
    monkeypatch.setenv("IDENTITY_NAMESPACE", str(namespace))
    get_settings.cache_clear()
    assert identity_to_uuid("dave") == str(uuid.uuid5(uuid.NAMESPACE_OID, "dave"))


def test_uuid_identity_maps_to_its_canonical_form() -> None:
    supabase_id = uuid.uuid4()
    assert identity_to_uuid(str(supabase_id)) == str(supabase_id)
    assert identity_to_uuid(str(supabase_id).upper()) == str(supabase_id)


def test_non_canonical_uuid_spellings_are_hashed_not_aliased() -> None:
    value = uuid.uuid4()
    for spelling in (value.hex, "{" + str(value) + "}", f"urn:uuid:{value}"):
        assert identity_to_uuid(spelling) == str(uuid.uuid5(uuid.NAMESPACE_DNS, spelling))


@pytest.mark.parametrize(
    "identity",
    ["", " ", "\t\n ", "a" * 513, "alice\n", "bob\x00", "tab\there", "bell\x07", "del\x7f", "c1\x85"],
)
def test_unusable_identities_are_rejected(identity: str) -> None:
    with pytest.raises(ValueError):
        identity_to_uuid(identity)


def test_error_messages_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="empty"):
        identity_to_uuid("   ")
    with pytest.raises(ValueError, match="512"):
        identity_to_uuid("x" * 600)
    with pytest.raises(ValueError, match="control"):
        identity_to_uuid("a\nb")


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        identity_to_uuid(42)  # type: ignore[arg-type]
