"""The one user-keyed store interface; backends fill in small storage primitives.

Validation, context handling, id generation, (de)serialisation and ChatKit
semantics live here once, so every backend behaves the same and the contract
suite checks the same rules everywhere. Backends only move bytes, always scoped by
the user id they are given.
"""

from __future__ import annotations

import builtins
import logging
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from chatkit.store import AttachmentStore, NotFoundError, Store, StoreItemType
from chatkit.types import (
    Attachment,
    AttachmentCreateParams,
    FileAttachment,
    ImageAttachment,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
)
from pydantic import AnyUrl

from memory.models import (
    MAX_MEMORY_CHANGES,
    Memory,
    MemoryChange,
    MemoryOp,
    Profile,
    Provenance,
    normalize_category,
    normalize_key,
    validate_source,
    validate_value,
)
from memory.ranking import query_terms
from stores import codec
from stores.changes import Change, ChangeFeed, ChangeKind
from stores.files import FileStorage
from stores.ids import (
    clamp_limit,
    is_descending,
    new_id,
    user_from_context,
    validate_object_id,
    validate_user_id,
)

logger = logging.getLogger(__name__)

_ITEM_PREFIXES: dict[str, str] = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "workflow": "wf",
    "task": "tsk",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}
_NO_PREVIEW = "https://preview.invalid/"  # stored in place of a signed preview URL
MAX_EMAIL_LENGTH = 320
MAX_PROFILE_IDENTITY_LENGTH = 512


class RawPage:
    """A page of serialised rows as a backend returns it."""

    __slots__ = ("has_more", "rows")

    def __init__(self, rows: list[str], has_more: bool) -> None:
        self.rows = rows
        self.has_more = has_more


class ThreadStore(Store[Any], AttachmentStore[Any], ABC):
    """ChatKit `Store` + `AttachmentStore`, every call scoped by `context.user_id`.

    Backends implement the `_`-prefixed primitives; each takes an already validated
    user id and must touch nothing outside that user's data.
    """

    files: FileStorage | None = None

    # -- ids ---------------------------------------------------------------
    def generate_thread_id(self, context: Any) -> str:
        return new_id("thr")

    def generate_item_id(self, item_type: StoreItemType, thread: ThreadMetadata, context: Any) -> str:
        return new_id(_ITEM_PREFIXES.get(item_type, "itm"))

    def generate_attachment_id(self, mime_type: str, context: Any) -> str:
        return new_id("atc")

    # -- threads -----------------------------------------------------------
    async def load_thread(self, thread_id: str, context: Any) -> ThreadMetadata:
        user_id = user_from_context(context)
        validate_object_id(thread_id, "thread id")
        data = await self._get_thread(user_id, thread_id)
        if data is None:
            raise NotFoundError(f"thread {thread_id} not found")
        return codec.load_thread(data)

    async def save_thread(self, thread: ThreadMetadata, context: Any) -> None:
        user_id = user_from_context(context)
        validate_object_id(thread.id, "thread id")
        await self._put_thread(user_id, thread.id, codec.sort_key(thread.created_at), codec.dump_thread(thread))

    async def load_threads(self, limit: int, after: str | None, order: str, context: Any) -> Page[ThreadMetadata]:
        user_id = user_from_context(context)
        descending = is_descending(order)
        if after is not None:
            validate_object_id(after, "cursor")
        raw = await self._page_threads(user_id, after, clamp_limit(limit), descending)
        threads = codec.load_threads(raw.rows)
        return Page(data=threads, has_more=raw.has_more, after=threads[-1].id if raw.has_more and threads else None)

    async def delete_thread(self, thread_id: str, context: Any) -> None:
        """Deletes the thread, its items, its attachments and their bytes; idempotent.

        Bytes go first: if deleting one fails, the metadata still lists it, so calling
        delete_thread again finishes the job instead of leaving orphaned bytes.
        """
        user_id = user_from_context(context)
        validate_object_id(thread_id, "thread id")
        bound: list[str] = []
        if self.files is not None:
            bound = [a.id for a in await self.list_attachments(user_id) if a.thread_id == thread_id]
            await self._delete_blobs(user_id, bound)
        attachment_ids = await self._delete_thread(user_id, thread_id)
        # attachments bound while we deleted bytes: their metadata is gone now, so a failure is only logged
        await self._delete_blobs(user_id, [a for a in attachment_ids if a not in bound], raise_first=False)

    # -- items -------------------------------------------------------------
    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: Any
    ) -> Page[ThreadItem]:
        user_id = user_from_context(context)
        validate_object_id(thread_id, "thread id")
        descending = is_descending(order)
        if after is not None:
            validate_object_id(after, "cursor")
        raw = await self._page_items(user_id, thread_id, after, clamp_limit(limit), descending)
        items = codec.load_items(raw.rows)
        if self.files is not None:  # only then can an item hold a preview URL to refresh
            items = [await self._fresh_previews(user_id, item) for item in items]
        return Page(data=items, has_more=raw.has_more, after=items[-1].id if raw.has_more and items else None)

    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: Any) -> None:
        await self._upsert_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: Any) -> None:
        await self._upsert_item(thread_id, item, context)

    async def _upsert_item(self, thread_id: str, item: ThreadItem, context: Any) -> None:
        user_id = user_from_context(context)
        validate_object_id(thread_id, "thread id")
        validate_object_id(item.id, "item id")
        item = self._without_previews(item)
        stored = await self._put_item(
            user_id, thread_id, item.id, codec.sort_key(item.created_at), codec.dump_item(item)
        )
        if not stored:
            raise NotFoundError(f"thread {thread_id} not found")

    async def load_item(self, thread_id: str, item_id: str, context: Any) -> ThreadItem:
        user_id = user_from_context(context)
        validate_object_id(thread_id, "thread id")
        validate_object_id(item_id, "item id")
        data = await self._get_item(user_id, thread_id, item_id)
        if data is None:
            raise NotFoundError(f"item {item_id} not found in thread {thread_id}")
        return await self._fresh_previews(user_id, codec.load_item(data))

    # signed image preview URLs expire: messages never store them and get fresh ones on every read
    def _without_previews(self, item: ThreadItem) -> ThreadItem:
        if self.files is None or not isinstance(item, UserMessageItem):
            return item
        if not any(isinstance(a, ImageAttachment) for a in item.attachments):
            return item
        attachments = [
            a.model_copy(update={"preview_url": AnyUrl(_NO_PREVIEW)}) if isinstance(a, ImageAttachment) else a
            for a in item.attachments
        ]
        return item.model_copy(update={"attachments": attachments})

    async def _fresh_previews(self, user_id: str, item: ThreadItem) -> ThreadItem:
        if self.files is None or not isinstance(item, UserMessageItem):
            return item
        if not any(isinstance(a, ImageAttachment) for a in item.attachments):
            return item
        attachments: list[Attachment] = []
        for a in item.attachments:
            if isinstance(a, ImageAttachment):
                a = a.model_copy(update={"preview_url": AnyUrl(await self.files.preview_url(user_id, a.id))})
            attachments.append(a)
        return item.model_copy(update={"attachments": attachments})

    async def delete_thread_item(self, thread_id: str, item_id: str, context: Any) -> None:
        user_id = user_from_context(context)
        validate_object_id(thread_id, "thread id")
        validate_object_id(item_id, "item id")
        await self._delete_item(user_id, thread_id, item_id)

    # -- attachments ---------------------------------------------------------
    async def save_attachment(self, attachment: Attachment, context: Any) -> None:
        user_id = user_from_context(context)
        validate_object_id(attachment.id, "attachment id")
        if attachment.thread_id is not None:
            validate_object_id(attachment.thread_id, "thread id")
        if isinstance(attachment, ImageAttachment) and self.files is not None:
            # signed preview URLs expire: never persist them, make them fresh on load
            attachment = attachment.model_copy(update={"preview_url": AnyUrl(_NO_PREVIEW)})
        await self._put_attachment(user_id, attachment.id, attachment.thread_id, codec.dump_attachment(attachment))

    async def load_attachment(self, attachment_id: str, context: Any) -> Attachment:
        user_id = user_from_context(context)
        validate_object_id(attachment_id, "attachment id")
        data = await self._get_attachment(user_id, attachment_id)
        if data is None:
            raise NotFoundError(f"attachment {attachment_id} not found")
        attachment = codec.load_attachment(data)
        if isinstance(attachment, ImageAttachment) and self.files is not None:
            preview = await self.files.preview_url(user_id, attachment_id)
            attachment = attachment.model_copy(update={"preview_url": AnyUrl(preview)})
        return attachment

    async def delete_attachment(self, attachment_id: str, context: Any) -> None:
        """Deletes metadata and bytes; idempotent (ChatKit calls it as Store and AttachmentStore)."""
        user_id = user_from_context(context)
        validate_object_id(attachment_id, "attachment id")
        await self._delete_attachment(user_id, attachment_id)
        # always: a retry after a failed byte delete finds no metadata but must still delete the bytes
        await self._delete_blobs(user_id, [attachment_id])

    async def create_attachment(self, input: AttachmentCreateParams, context: Any) -> Attachment:
        """Phase one of a two-phase upload: check limits, return where to upload. Not saved here."""
        user_id = user_from_context(context)
        if self.files is None:
            raise ValueError("file uploads are not configured: set FILES_URL (e.g. file://./data/files)")
        mime_type = input.mime_type.strip().lower()
        if mime_type not in self.files.allowed_mime_types:
            raise ValueError(
                f"file type {mime_type[:80]!r} is not allowed; "
                f"allowed: {', '.join(sorted(self.files.allowed_mime_types))}"
            )
        if input.size <= 0 or input.size > self.files.max_bytes:
            raise ValueError(f"file size must be between 1 byte and {self.files.max_bytes} bytes")
        name = input.name.strip()
        if not name or len(name) > 255 or any(ord(ch) < 32 for ch in name):
            raise ValueError("file name must be 1-255 printable characters")
        attachment_id = self.generate_attachment_id(mime_type, context)
        descriptor = await self.files.upload_descriptor(user_id, attachment_id, mime_type, input.size)
        if mime_type.startswith("image/"):
            preview = await self.files.preview_url(user_id, attachment_id)
            return ImageAttachment(
                id=attachment_id,
                name=name,
                mime_type=mime_type,
                upload_descriptor=descriptor,
                preview_url=AnyUrl(preview),
            )
        return FileAttachment(id=attachment_id, name=name, mime_type=mime_type, upload_descriptor=descriptor)

    async def _delete_blobs(self, user_id: str, attachment_ids: list[str], *, raise_first: bool = True) -> None:
        """Delete each attachment's bytes; one failure does not stop the others.

        The first failure is re-raised at the end (so the caller keeps its metadata for a
        retry) unless `raise_first` is False, when it is only logged.
        """
        if self.files is None:
            return
        first: Exception | None = None
        for attachment_id in attachment_ids:
            try:
                await self.files.delete(user_id, attachment_id)
            except Exception as exc:
                # the type only: a storage error's text may carry a signed URL
                logger.warning("deleting the bytes of attachment %s failed (%s)", attachment_id, type(exc).__name__)
                first = first or exc
        if first is not None and raise_first:
            raise first

    # -- whole-user helpers used by export ---------------------------------
    async def list_attachments(self, user_id: str) -> list[Attachment]:
        """Every attachment of the user, by id (the same order on every backend, so exports compare)."""
        validate_user_id(user_id)
        attachments = [codec.load_attachment(row) for row in await self._list_attachments(user_id)]
        return sorted(attachments, key=lambda attachment: attachment.id)

    # -- backend primitives ------------------------------------------------
    @abstractmethod
    async def _get_thread(self, user_id: str, thread_id: str) -> str | None:
        """The thread's JSON, or None if this user has no such thread."""

    @abstractmethod
    async def _put_thread(self, user_id: str, thread_id: str, sort_key: int, data: str) -> None:
        """Upsert; an existing thread keeps its sort position (sort key and insertion seq)."""

    @abstractmethod
    async def _page_threads(self, user_id: str, after: str | None, limit: int, descending: bool) -> RawPage:
        """Up to `limit` threads strictly after cursor thread `after` in (sort_key, seq) order.

        An unknown cursor gives an empty page (never the first page again).
        """

    @abstractmethod
    async def _delete_thread(self, user_id: str, thread_id: str) -> list[str]:
        """Atomically delete the thread, its items and attachments bound to it; return those attachment ids."""

    @abstractmethod
    async def _get_item(self, user_id: str, thread_id: str, item_id: str) -> str | None:
        """The item's JSON, or None."""

    @abstractmethod
    async def _put_item(self, user_id: str, thread_id: str, item_id: str, sort_key: int, data: str) -> bool:
        """Upsert an item keeping its original position; False (and no write) if the thread is missing."""

    @abstractmethod
    async def _page_items(
        self, user_id: str, thread_id: str, after: str | None, limit: int, descending: bool
    ) -> RawPage:
        """Like `_page_threads` for a thread's items; a missing thread gives an empty page."""

    @abstractmethod
    async def _delete_item(self, user_id: str, thread_id: str, item_id: str) -> None:
        """Delete one item; missing is fine."""

    @abstractmethod
    async def _get_attachment(self, user_id: str, attachment_id: str) -> str | None:
        """The attachment's JSON, or None."""

    @abstractmethod
    async def _put_attachment(self, user_id: str, attachment_id: str, thread_id: str | None, data: str) -> None:
        """Upsert attachment metadata for this user."""

    @abstractmethod
    async def _delete_attachment(self, user_id: str, attachment_id: str) -> bool:
        """Delete metadata; True if it existed."""

    @abstractmethod
    async def _list_attachments(self, user_id: str) -> list[str]:
        """Every attachment JSON of the user."""

    @abstractmethod
    def _old_threads(self, created_before: int, batch: int) -> AsyncIterator[list[tuple[str, str, str]]]:
        """Retention, across users: batches of at most `batch` (user id, thread id, thread JSON) of the
        threads whose sort key (created_at) is below `created_before`, oldest first.

        Each batch is read on its own (no transaction spans batches); the caller may
        delete rows of a batch before asking for the next one.
        """


async def _published(feed: ChangeFeed | None, user_id: str, kind: ChangeKind, op: str) -> None:
    """Announce a successful write on the user's change feed (never raises; see `stores.changes`)."""
    if feed is not None:
        await feed.publish(Change(user_id, kind, op))


@dataclass(frozen=True)
class ChangeNote:
    """What a backend records in the audit trail with a memory write, in the same atomic write.

    The backend adds what only it knows (whether the memory existed, its id).
    """

    id: str
    at: datetime
    source: str | None = None
    thread_id: str | None = None
    item_id: str | None = None

    def entry(
        self, user_id: str, op: MemoryOp, category: str, key: str, memory_id: str | None, n: int = 0
    ) -> MemoryChange:
        """The entry for one memory; `n` > 0 numbers the entries of a write touching several (`<id>.<n>`)."""
        return MemoryChange(
            id=f"{self.id}.{n}" if n else self.id,
            user_id=user_id,
            at=self.at,
            op=op,
            category=category,
            key=key,
            memory_id=memory_id,
            source=self.source,
            thread_id=self.thread_id,
            item_id=self.item_id,
        )


def change_note(
    source: str | None, *, thread_id: str | None = None, item_id: str | None = None, now: datetime | None = None
) -> ChangeNote:
    return ChangeNote(new_id("chg"), now or codec.utc_now(), validate_source(source), thread_id, item_id)


class MemoryStore(ABC):
    """Facts about a user, unique per (user, category, key); ranking is shared (memory.ranking).

    Every write also appends to the user's audit trail (`history`) in the same atomic
    write, keeping at most MAX_MEMORY_CHANGES entries per user.

    Each memory carries its provenance: `source` (voice/chat/api) and the thread and
    item ids of the turn it was learned from, so one conversation's facts can be
    forgotten together (`forget_from`).
    """

    changes: ChangeFeed | None = None  # set by the UserStore; every successful write is published on it

    async def remember(
        self,
        user_id: str,
        category: str,
        key: str,
        value: str,
        *,
        source: str | None = None,
        thread_id: str | None = None,
        item_id: str | None = None,
    ) -> Memory:
        validate_user_id(user_id)
        if thread_id is not None:
            validate_object_id(thread_id, "thread id")
        if item_id is not None:
            validate_object_id(item_id, "item id")
        note = change_note(source, thread_id=thread_id, item_id=item_id)
        memory = await self._upsert(
            user_id,
            normalize_category(category),
            normalize_key(key),
            validate_value(value),
            Provenance(note.source, thread_id, item_id),
            note.at,
            new_id("mem"),
            note,
        )
        await _published(self.changes, user_id, "memory", "remember")
        return memory

    async def history(self, user_id: str, limit: int = 100) -> builtins.list[MemoryChange]:
        """The user's memory changes, newest first (at most MAX_MEMORY_CHANGES are kept)."""
        validate_user_id(user_id)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_MEMORY_CHANGES}")
        return await self._history(user_id, min(limit, MAX_MEMORY_CHANGES))

    async def get(self, user_id: str, category: str, key: str) -> Memory | None:
        validate_user_id(user_id)
        return await self._get(user_id, normalize_category(category), normalize_key(key))

    async def list(self, user_id: str, category: str | None = None) -> builtins.list[Memory]:
        """Newest first (by last update, then id)."""
        validate_user_id(user_id)
        rows = await self._list(user_id, None if category is None else normalize_category(category))
        return sorted(rows, key=lambda m: (m.updated_at, m.id), reverse=True)

    async def search(self, user_id: str, query: str, limit: int = 5) -> builtins.list[Memory]:
        """The memories most relevant to `query` (no LLM, same order on every backend)."""
        validate_user_id(user_id)
        if not isinstance(query, str):
            raise ValueError("query must be a string")
        terms = query_terms(query)
        if not terms:
            return []
        return await self._search(user_id, terms, clamp_limit(limit))

    async def forget(self, user_id: str, category: str, key: str, *, source: str | None = None) -> bool:
        """Delete one memory; True if it existed. `source` says who asked (for the audit trail)."""
        validate_user_id(user_id)
        forgotten = await self._delete(user_id, normalize_category(category), normalize_key(key), change_note(source))
        if forgotten:
            await _published(self.changes, user_id, "memory", "forget")
        return forgotten

    async def forget_stale(self, user_id: str, category: str, key: str, updated_before: datetime) -> bool:
        """Forget the memory only if it was last updated before `updated_before` (retention; source `retention`).

        Conditional in the same write, so a memory refreshed meanwhile (even by another
        process) survives the sweep.
        """
        validate_user_id(user_id)
        note = change_note("retention")
        forgotten = await self._delete(
            user_id, normalize_category(category), normalize_key(key), note, updated_before=updated_before
        )
        if forgotten:
            await _published(self.changes, user_id, "memory", "forget")
        return forgotten

    async def forget_from(self, user_id: str, thread_id: str, *, source: str | None = None) -> int:
        """Forget every memory whose current value was learned in thread `thread_id`; return how many."""
        validate_user_id(user_id)
        validate_object_id(thread_id, "thread id")
        forgotten = await self._delete_from(user_id, thread_id, change_note(source, thread_id=thread_id))
        if forgotten:
            await _published(self.changes, user_id, "memory", "forget_from")
        return forgotten

    @abstractmethod
    async def _upsert(
        self,
        user_id: str,
        category: str,
        key: str,
        value: str,
        origin: Provenance,
        now: datetime,
        new_id: str,
        change: ChangeNote,
    ) -> Memory:
        """Insert, or update value/provenance/updated_at keeping id and created_at; return the stored row.

        In the same atomic write, append `change` to the audit trail (`remember` when the
        memory is new, `update` otherwise) and drop the user's entries beyond MAX_MEMORY_CHANGES.
        """

    @abstractmethod
    async def _history(self, user_id: str, limit: int) -> builtins.list[MemoryChange]:
        """Up to `limit` audit entries of the user, newest first."""

    @abstractmethod
    async def _replace_history(self, user_id: str, changes: builtins.list[MemoryChange]) -> None:
        """Operators only (`python -m stores copy`): make the user's audit trail exactly `changes`.

        `changes` is newest first, as `_history` returns it, and at most MAX_MEMORY_CHANGES long.
        """

    @abstractmethod
    def _stale(self, updated_before: datetime, batch: int) -> AsyncIterator[builtins.list[tuple[str, str, str]]]:
        """Retention, across users: batches of at most `batch` (user id, category, key) of the memories
        last updated before `updated_before`.

        Each batch is read on its own; the caller forgets them (conditionally) before the next.
        """

    @abstractmethod
    async def _get(self, user_id: str, category: str, key: str) -> Memory | None: ...

    @abstractmethod
    async def _list(self, user_id: str, category: str | None) -> builtins.list[Memory]:
        """All memories of the user (optionally one category), any order."""

    @abstractmethod
    async def _delete(
        self, user_id: str, category: str, key: str, change: ChangeNote, *, updated_before: datetime | None = None
    ) -> bool:
        """Delete the memory (only if updated before `updated_before`, when given); True if it was deleted.

        A deletion appends `change` as a `forget` entry to the audit trail in the same write.
        """

    @abstractmethod
    async def _delete_from(self, user_id: str, thread_id: str, change: ChangeNote) -> int:
        """Delete the user's memories whose `thread_id` is this thread; return how many.

        Each deleted memory gets a `forget` entry (from `change`) in the same write.
        """

    @abstractmethod
    async def _search(self, user_id: str, terms: builtins.list[str], limit: int) -> builtins.list[Memory]:
        """What `memory.ranking.rank` gives over all the user's memories, read through the term index.

        Backends fetch the postings of `terms` and the user's memory count, let
        `memory.ranking.rank_postings` choose, then load only the chosen memories.
        """


class ProfileStore(ABC):
    """One profile per user, created race-free on first contact.

    `default_memory_enabled` is the consent of profiles created from now on
    (`open_store` sets it from MEMORY_DEFAULT_ENABLED).
    """

    default_memory_enabled: bool = True

    changes: ChangeFeed | None = None  # set by the UserStore; profile changes that matter are published on it

    async def ensure(self, user_id: str, *, identity: str | None = None, email: str | None = None) -> Profile:
        validate_user_id(user_id)
        if identity is not None and (not identity.strip() or len(identity) > MAX_PROFILE_IDENTITY_LENGTH):
            raise ValueError(f"identity must be 1-{MAX_PROFILE_IDENTITY_LENGTH} characters")
        if identity is not None and _has_control_characters(identity):
            raise ValueError("identity must not contain control characters (NUL, newline, tab, ...)")
        if email is not None and (len(email) > MAX_EMAIL_LENGTH or "@" not in email or _has_control_characters(email)):
            raise ValueError(
                "email must look like name@domain, be at most 320 characters and hold no control characters"
            )
        return await self._ensure(user_id, identity, email, codec.utc_now())

    async def get(self, user_id: str) -> Profile | None:
        """The stored profile; `is_first_login` is always False (it only means something in ensure's result)."""
        validate_user_id(user_id)
        profile = await self._get(user_id)
        if profile is None or not profile.is_first_login:
            return profile
        return profile.model_copy(update={"is_first_login": False})

    async def set_memory_enabled(self, user_id: str, enabled: bool) -> Profile:
        """Switch the user's memory consent; creates the profile if missing (a later ensure is not a first login)."""
        validate_user_id(user_id)
        if not isinstance(enabled, bool):
            raise ValueError("memory_enabled must be true or false")
        profile = await self._set_memory_enabled(user_id, enabled, codec.utc_now())
        await _published(self.changes, user_id, "profile", "memory_enabled")
        return profile.model_copy(update={"is_first_login": False}) if profile.is_first_login else profile

    @abstractmethod
    async def _ensure(self, user_id: str, identity: str | None, email: str | None, now: datetime) -> Profile:
        """Atomically create (is_first_login=True in the result) or touch last_seen_at (False).

        Missing identity/email are filled in; existing ones are kept. A new profile gets
        `memory_enabled = self.default_memory_enabled`.
        """

    @abstractmethod
    async def _get(self, user_id: str) -> Profile | None: ...

    @abstractmethod
    async def _set_memory_enabled(self, user_id: str, enabled: bool, now: datetime) -> Profile:
        """Atomically set the switch, creating the profile (created_at = last_seen_at = now) if missing."""


def _has_control_characters(text: str) -> bool:
    """C0/C1 controls and DEL: invisible in logs, and Postgres rejects NUL outright."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


class UserStore(ABC):
    """The store facade: `threads`, `memories`, `profiles`, whole-user export and erase."""

    threads: ThreadStore
    memories: MemoryStore
    profiles: ProfileStore
    changes: ChangeFeed  # the per-user change feed (`stores.changes`)
    url: str  # redacted, safe to log

    _closed: bool = False

    async def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored for one user as JSON-serialisable data."""
        validate_user_id(user_id)
        context = {"user_id": user_id}
        profile = await self.profiles.get(user_id)
        threads: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await self.threads.load_threads(100, after, "asc", context)
            for thread in page.data:
                threads.append(
                    {**thread.model_dump(mode="json"), "items": await self._export_items(thread.id, context)}
                )
            if not page.has_more:
                break
            after = page.after
        return {
            "user_id": user_id,
            "profile": profile.model_dump(mode="json") if profile else None,
            "memories": [m.model_dump(mode="json") for m in await self.memories.list(user_id)],
            "memory_changes": [
                c.model_dump(mode="json") for c in await self.memories.history(user_id, MAX_MEMORY_CHANGES)
            ],
            "threads": threads,
            "attachments": [a.model_dump(mode="json") for a in await self.threads.list_attachments(user_id)],
        }

    async def _export_items(self, thread_id: str, context: dict[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await self.threads.load_thread_items(thread_id, after, 100, "asc", context)
            items.extend(item.model_dump(mode="json") for item in page.data)
            if not page.has_more:
                return items
            after = page.after

    def erasing_in_bulk(self) -> AbstractAsyncContextManager[None]:
        """A block whose erases may finish removing bytes together at its end (many forgets in a row).

        SQLite rewrites its file after every erase (docs/erasure.md); inside this block it
        rewrites once, when the block ends. Other backends have nothing to batch.
        """
        return nullcontext()

    async def forget_user(self, user_id: str, *, announce: bool = True) -> None:
        """Delete every row/key of the user (and their attachment bytes); touch no one else.

        Live calls of the user hear it on the change feed and stop (`announce=False`: a
        call repeating the erase it heard of, which must not stop the user's next call).
        """
        validate_user_id(user_id)
        await self._forget_user(user_id)
        if self.threads.files is not None:
            await self.threads.files.delete_user(user_id)
        if announce:
            await _published(self.changes, user_id, "erase", "forget_user")

    def _use_changes(self, feed: ChangeFeed) -> None:
        """Install the backend's change feed; every facet publishes its successful writes on it."""
        self.changes = feed
        self.memories.changes = feed
        self.profiles.changes = feed

    async def list_users(self) -> list[str]:
        """Every user id with anything stored (profile, memories, threads or attachments), sorted.

        For operators (`python -m stores copy`); it reads across users, so it is never
        reachable from a user's request.
        """
        return sorted(set(await self._list_users()))

    @abstractmethod
    async def _forget_user(self, user_id: str) -> None: ...

    @abstractmethod
    async def _list_users(self) -> list[str]:
        """The ids of users with stored data, any order, duplicates allowed."""

    @abstractmethod
    async def ping(self) -> None:
        """One round trip to the backend; raises if it is unreachable."""

    async def aclose(self) -> None:
        """Close the connection pool once; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.changes.aclose()  # its listener may hold a connection of the pool
        finally:
            await self._close()

    async def _close(self) -> None:  # noqa: B027 - optional hook, most backends have a pool to close
        """Release connections (backends with a pool override this)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


__all__ = [
    "ChangeNote",
    "MemoryStore",
    "NotFoundError",
    "ProfileStore",
    "Provenance",
    "RawPage",
    "ThreadStore",
    "UserStore",
    "logger",
]
