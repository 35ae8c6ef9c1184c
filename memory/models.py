"""The data contract for memories and profiles, and the rules for their fields.

Normalisation lives here (not in each backend) so every backend stores the same
category/key for the same input and upserts hit the same row.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

MAX_CATEGORY_LENGTH = 32
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 2000
MAX_SOURCE_LENGTH = 64
MAX_MEMORY_CHANGES = 1000  # audit entries kept per user; older ones are dropped

_CATEGORY_RE = re.compile(r"[a-z][a-z0-9_-]*")
_KEY_RE = re.compile(r"[\w.'-]+")
_WHITESPACE_RE = re.compile(r"\s+")


class Memory(BaseModel):
    """One remembered fact about a user, unique per (user_id, category, key)."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    category: str
    key: str
    value: str
    source: str | None = None
    thread_id: str | None = None  # provenance: the conversation (ChatKit thread) it was learned in
    item_id: str | None = None  # provenance: the turn (thread item) it was learned from
    created_at: datetime
    updated_at: datetime


MemoryOp = Literal["remember", "update", "forget"]


class MemoryChange(BaseModel):
    """One entry of a user's memory audit trail: what changed, when, and where it came from.

    Values are not recorded (the trail must not keep a forgotten value alive); `op` is
    `remember` (new), `update` (existing memory rewritten) or `forget`. `source` is
    `voice`, `chat`, `api`, `capture`, `retention`, ... when known.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    at: datetime
    op: MemoryOp
    category: str
    key: str
    memory_id: str | None = None
    source: str | None = None
    thread_id: str | None = None
    item_id: str | None = None


class Provenance(NamedTuple):
    """Where a memory's current value came from: `source` (voice/chat/api) and the turn's thread/item ids."""

    source: str | None = None
    thread_id: str | None = None
    item_id: str | None = None


class Profile(BaseModel):
    """A user's profile; `is_first_login` is True only on the call that created it.

    `memory_enabled` is the user's consent switch for memory (MEMORY_DEFAULT_ENABLED for new profiles).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    identity: str | None = None
    email: str | None = None
    is_first_login: bool = False
    memory_enabled: bool = True  # consent: when False nothing is captured, injected or stored
    created_at: datetime
    last_seen_at: datetime


def normalize_category(category: str) -> str:
    """Lower-case, trimmed category such as `preference`; ValueError if unusable."""
    if not isinstance(category, str):
        raise ValueError("category must be a string")
    value = _WHITESPACE_RE.sub("_", category.strip().lower())
    if not value or len(value) > MAX_CATEGORY_LENGTH or not _CATEGORY_RE.fullmatch(value):
        raise ValueError(
            f"invalid memory category {category[:40]!r}: use 1-{MAX_CATEGORY_LENGTH} characters, "
            "a letter first, then letters, digits, '_' or '-' (e.g. 'preference')"
        )
    return value


def normalize_key(key: str) -> str:
    """Lower-case key with runs of spaces turned into `_` (`Favourite Colour` -> `favourite_colour`)."""
    if not isinstance(key, str):
        raise ValueError("key must be a string")
    value = _WHITESPACE_RE.sub("_", unicodedata.normalize("NFC", key).strip().lower())
    if not value or len(value) > MAX_KEY_LENGTH or not _KEY_RE.fullmatch(value):
        raise ValueError(
            f"invalid memory key {key[:40]!r}: use 1-{MAX_KEY_LENGTH} letters, digits, spaces, "
            "'_', '-', '.' or apostrophes (e.g. 'favourite colour')"
        )
    return value


def validate_value(value: str) -> str:
    """A trimmed value of 1-2000 characters without NUL bytes."""
    if not isinstance(value, str):
        raise ValueError("value must be a string")
    stripped = value.strip()
    if not stripped:
        raise ValueError("memory value is empty: say what to remember")
    if len(stripped) > MAX_VALUE_LENGTH:
        raise ValueError(f"memory value is {len(stripped)} characters long; the limit is {MAX_VALUE_LENGTH}")
    if "\x00" in stripped:
        raise ValueError("memory value contains a NUL byte; remove it")
    return stripped


def validate_source(source: str | None) -> str | None:
    """Optional short label of where a memory came from (`voice`, `chat`, ...)."""
    if source is None:
        return None
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE_LENGTH or "\x00" in source:
        raise ValueError(f"memory source must be 1-{MAX_SOURCE_LENGTH} characters (e.g. 'voice')")
    return source.strip()
