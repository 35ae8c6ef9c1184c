"""Validation of user ids, object ids and the ChatKit request context, before any I/O.

Ids end up inside Redis keys, SQL parameters and file paths; a strict alphabet means
a crafted id can never name another user's key or escape a directory.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

USER_ID_RE = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
OBJECT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_PAGE_LIMIT = 100


def validate_user_id(user_id: Any) -> str:
    """Return `user_id` if it is 1-128 chars of `[A-Za-z0-9_.@-]`, else raise ValueError."""
    if not isinstance(user_id, str) or not USER_ID_RE.fullmatch(user_id) or user_id in {".", ".."}:
        raise ValueError(
            "invalid user id: expected 1-128 characters from A-Z a-z 0-9 _ . @ - "
            "(map identities with memory.identity_to_uuid)"
        )
    return user_id


def validate_object_id(object_id: Any, kind: str = "id") -> str:
    """Return a thread/item/attachment id if it is 1-128 chars of `[A-Za-z0-9_-]`, else ValueError."""
    if not isinstance(object_id, str) or not OBJECT_ID_RE.fullmatch(object_id):
        raise ValueError(f"invalid {kind}: expected 1-128 characters from A-Z a-z 0-9 _ -")
    return object_id


def user_from_context(context: Any) -> str:
    """The user id carried by a ChatKit request context (attribute or mapping key).

    A context without a user is an error: there is no shared or default bucket.
    """
    user_id: Any = None
    if isinstance(context, Mapping):
        user_id = context.get("user_id")
    elif context is not None:
        user_id = getattr(context, "user_id", None)
    if user_id is None or user_id == "":
        raise ValueError(
            "the ChatKit context has no user: pass an object with a `user_id` attribute "
            "or a mapping with a 'user_id' key"
        )
    return validate_user_id(user_id)


def clamp_limit(limit: Any) -> int:
    """Page sizes outside 1..100 are clamped (a client may send anything)."""
    try:
        value = int(limit)
    except (TypeError, ValueError):
        return 20
    return max(1, min(MAX_PAGE_LIMIT, value))


def is_descending(order: Any) -> bool:
    """ChatKit orders are 'asc' or 'desc'; anything else is rejected."""
    if order == "desc":
        return True
    if order == "asc":
        return False
    raise ValueError("invalid order: use 'asc' or 'desc'")


def new_id(prefix: str) -> str:
    """A 128-bit random id with a ChatKit-style prefix (`thr_…`, `msg_…`)."""
    return f"{prefix}_{uuid.uuid4().hex}"
