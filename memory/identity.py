"""Map a caller identity (email, username, Supabase user id) to a stable user UUID."""

from __future__ import annotations

import unicodedata
import uuid

MAX_IDENTITY_LENGTH = 512


def _default_namespace() -> uuid.UUID:
    from memory.settings import get_settings

    return get_settings().identity_namespace


def identity_to_uuid(identity: str, namespace: uuid.UUID | None = None) -> str:
    """Return uuid5(namespace, identity) as a string, or the identity itself if it is a UUID.

    A UUID identity maps to its canonical lower-case form so a Supabase user id used
    as the LiveKit identity is the same user in voice and in chat.
    """
    if not isinstance(identity, str):
        raise TypeError(f"identity must be a str, got {type(identity).__name__}")
    if not identity.strip():
        raise ValueError("identity is empty: pass the participant identity (e.g. an email or a user id)")
    if len(identity) > MAX_IDENTITY_LENGTH:
        raise ValueError(f"identity is {len(identity)} characters long; the limit is {MAX_IDENTITY_LENGTH}")
    if any(unicodedata.category(ch) == "Cc" for ch in identity):
        raise ValueError("identity contains control characters (newline, tab, NUL ...); strip them first")
    try:
        parsed = uuid.UUID(identity)
    except ValueError:
        parsed = None
    if parsed is not None and str(parsed) == identity.lower():
        return str(parsed)
    return str(uuid.uuid5(namespace or _default_namespace(), identity))
