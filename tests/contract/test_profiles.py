"""Profiles: created once on first contact, identity/email filled but never replaced."""

from __future__ import annotations

import asyncio

import pytest

from stores import UserStore


async def test_ensure_creates_once(store: UserStore, user_a: str) -> None:
    assert await store.profiles.get(user_a) is None

    first = await store.profiles.ensure(user_a, identity="alice@example.com", email="alice@example.com")
    await asyncio.sleep(0.002)
    second = await store.profiles.ensure(user_a)

    assert first.is_first_login is True and second.is_first_login is False
    assert first.id == second.id == user_a
    assert second.created_at == first.created_at
    assert second.last_seen_at > first.last_seen_at
    assert (second.identity, second.email) == ("alice@example.com", "alice@example.com")
    stored = await store.profiles.get(user_a)
    assert stored is not None
    assert (stored.id, stored.identity, stored.email, stored.created_at) == (
        user_a,
        "alice@example.com",
        "alice@example.com",
        first.created_at,
    )
    assert stored.last_seen_at == second.last_seen_at


async def test_ensure_fills_missing_fields_and_keeps_existing(store: UserStore, user_a: str) -> None:
    await store.profiles.ensure(user_a, identity="voice-caller")

    filled = await store.profiles.ensure(user_a, identity="someone-else", email="alice@example.com")
    kept = await store.profiles.ensure(user_a, identity="third", email="other@example.com")

    assert (filled.identity, filled.email) == ("voice-caller", "alice@example.com")
    assert (kept.identity, kept.email) == ("voice-caller", "alice@example.com")
    assert not filled.is_first_login and not kept.is_first_login


async def test_profiles_are_per_user(store: UserStore, user_a: str, user_b: str) -> None:
    await store.profiles.ensure(user_a, identity="alice")

    b = await store.profiles.ensure(user_b, identity="bob")

    assert b.is_first_login and b.identity == "bob"
    a = await store.profiles.get(user_a)
    assert a is not None and a.identity == "alice"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"identity": ""},
        {"identity": "  "},
        {"identity": "x" * 513},
        {"email": "no-at-sign"},
        {"email": "a@" + "b" * 320},
        {"identity": "alice\x00"},
        {"identity": "line\nbreak"},
        {"identity": "bell\x07"},
        {"identity": "c1\x85control"},
        {"email": "alice\n@example.com"},
    ],
)
async def test_bad_identity_or_email_rejected(store: UserStore, user_a: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"identity|email"):
        await store.profiles.ensure(user_a, **kwargs)
    assert await store.profiles.get(user_a) is None


async def test_get_never_reports_a_first_login(store: UserStore, user_a: str) -> None:
    """`is_first_login` belongs to the ensure call that created the profile, on every backend."""
    created = await store.profiles.ensure(user_a, identity="alice")
    after_first = await store.profiles.get(user_a)
    await store.profiles.ensure(user_a)
    after_second = await store.profiles.get(user_a)

    assert created.is_first_login is True
    assert after_first is not None and after_first.is_first_login is False
    assert after_second is not None and after_second.is_first_login is False
    assert after_first.identity == "alice" and after_first.created_at == created.created_at
