"""The session ContextVar: binding, restoring, and never a default user."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest

from memory import (
    UnboundUserError,
    current_user_id,
    get_session_identity,
    get_session_user_uuid,
    set_session_user,
    user_session,
)

T = TypeVar("T")


def _in_fresh_context(fn: Callable[[], T]) -> T:
    return contextvars.Context().run(fn)


def test_unbound_has_no_user() -> None:
    def check() -> None:
        assert get_session_user_uuid() is None
        assert get_session_identity() is None
        with pytest.raises(UnboundUserError, match="set_session_user"):
            current_user_id()

    _in_fresh_context(check)


def test_set_session_user_binds_the_uuid() -> None:
    def check() -> None:
        user_id = set_session_user("erin@example.com")
        assert user_id == str(uuid.uuid5(uuid.NAMESPACE_DNS, "erin@example.com"))
        assert get_session_user_uuid() == user_id
        assert current_user_id() == user_id
        assert get_session_identity() == "erin@example.com"

    _in_fresh_context(check)


def test_invalid_identity_leaves_the_binding_alone() -> None:
    def check() -> None:
        first = set_session_user("frank")
        with pytest.raises(ValueError):
            set_session_user("")
        assert current_user_id() == first

    _in_fresh_context(check)


def test_user_session_restores_previous_binding_even_on_error() -> None:
    def check() -> None:
        outer = set_session_user("outer")
        with user_session("inner") as inner:
            assert inner == str(uuid.uuid5(uuid.NAMESPACE_DNS, "inner"))
            assert current_user_id() == inner
            assert get_session_identity() == "inner"
            with user_session("innermost") as innermost:
                assert current_user_id() == innermost
            assert current_user_id() == inner
        assert current_user_id() == outer
        assert get_session_identity() == "outer"
        with pytest.raises(RuntimeError), user_session("boom"):
            raise RuntimeError("x")
        assert current_user_id() == outer

    _in_fresh_context(check)


def test_user_session_from_unbound_returns_to_unbound() -> None:
    def check() -> None:
        with user_session("grace"):
            pass
        with pytest.raises(UnboundUserError):
            current_user_id()

    _in_fresh_context(check)


async def test_tasks_do_not_see_each_others_user() -> None:
    seen: dict[str, str] = {}

    async def serve(identity: str) -> None:
        set_session_user(identity)
        await asyncio.sleep(0.01)
        seen[identity] = current_user_id()

    await asyncio.gather(*(serve(f"user{i}") for i in range(20)))
    assert seen == {f"user{i}": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"user{i}")) for i in range(20)}
    assert get_session_user_uuid() is None  # the test's own context was never bound
