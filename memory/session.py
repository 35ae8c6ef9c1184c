"""The user bound to the current voice session or request, held in a ContextVar.

Bind the user before `AgentSession.start()` so every hook, tool and `llm_node`
of that session sees it. There is deliberately no default user.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from memory.identity import identity_to_uuid

_SESSION_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar("memory_session_user", default=None)
_SESSION_IDENTITY: contextvars.ContextVar[str | None] = contextvars.ContextVar("memory_session_identity", default=None)


class UnboundUserError(RuntimeError):
    """Raised when code needs the session user and none is bound."""


def set_session_user(identity: str) -> str:
    """Bind the user for this context and return its UUID."""
    user_id = identity_to_uuid(identity)
    _SESSION_USER.set(user_id)
    _SESSION_IDENTITY.set(identity)
    return user_id


def get_session_user_uuid() -> str | None:
    """The bound user's UUID, or None when nothing is bound."""
    return _SESSION_USER.get()


def get_session_identity() -> str | None:
    """The original identity the bound user came from (keep out of INFO logs)."""
    return _SESSION_IDENTITY.get()


def current_user_id() -> str:
    """The bound user's UUID; raises UnboundUserError instead of guessing a user."""
    user_id = _SESSION_USER.get()
    if user_id is None:
        raise UnboundUserError(
            "no user is bound to this session: call memory.set_session_user(identity) before starting the agent session"
        )
    return user_id


@contextmanager
def user_session(identity: str) -> Iterator[str]:
    """Bind `identity` for the block, yield its UUID, restore the previous binding on exit."""
    user_id = identity_to_uuid(identity)
    user_token = _SESSION_USER.set(user_id)
    identity_token = _SESSION_IDENTITY.set(identity)
    try:
        yield user_id
    finally:
        _SESSION_IDENTITY.reset(identity_token)
        _SESSION_USER.reset(user_token)
