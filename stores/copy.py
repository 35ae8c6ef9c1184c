"""Copy users from one store to another, exactly, idempotently and resumably.

`copy_user` makes the destination hold what the source holds for one user: the
profile, every memory (id, timestamps and provenance kept), the memory audit trail,
every thread and its
items in order, attachment metadata and, when both sides name a local files
directory, the attachment bytes. It reads both sides first and writes only what
differs, so:

- a second run writes nothing (and says so): that is idempotence;
- a run killed at any point leaves a destination that a rerun completes: every write
  is an upsert keyed by ids that come from the source, threads and items are written
  in source order (so a rerun appends the missing tail after the copied head), and
  nothing is deleted;
- records that exist only on the destination are left alone and counted, so copying
  into a store in use never loses data; `--verify` reports them as differences.

Rows move as the JSON the source stored (no decode and re-encode), so they arrive
byte for byte; the backends' storage primitives are used directly because the public
calls stamp new ids and times.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from memory.models import MAX_MEMORY_CHANGES, Memory, Profile, Provenance
from stores import codec
from stores.base import ThreadStore, UserStore, change_note
from stores.errors import StoreError

_PAGE = 100


class CopyConflictError(StoreError):
    """The destination holds something for the user that the copy cannot make equal without deleting it."""


@dataclass
class UserCopy:
    """What copying one user did: writes made, items seen, destination-only records left alone."""

    user_id: str
    writes: int = 0
    items: int = 0
    extras: int = 0
    details: list[str] = field(default_factory=list)

    def wrote(self, what: str) -> None:
        self.writes += 1
        if what not in self.details:
            self.details.append(what)


@dataclass(frozen=True)
class FileDirs:
    """Local attachment directories (FILES_URL=file://...) of the source and the destination."""

    source: Path
    destination: Path


async def copy_user(source: UserStore, destination: UserStore, user_id: str, files: FileDirs | None) -> UserCopy:
    """Make `destination` hold everything `source` holds for `user_id` (see the module docstring)."""
    result = UserCopy(user_id)
    await _copy_profile(source, destination, user_id, result)
    await _copy_memories(source, destination, user_id, result)
    await _copy_history(source, destination, user_id, result)  # after the memories: their writes append to it
    await _copy_threads(source.threads, destination.threads, user_id, result)
    attachment_ids = await _copy_attachments(source.threads, destination.threads, user_id, result)
    if files is not None:
        for attachment_id in attachment_ids:
            if await asyncio.to_thread(_copy_bytes, files, user_id, attachment_id):
                result.wrote("attachment bytes")
    return result


async def _copy_profile(source: UserStore, destination: UserStore, user_id: str, result: UserCopy) -> None:
    wanted = await source.profiles.get(user_id)
    if wanted is None:
        return
    current = await destination.profiles.get(user_id)
    if current == wanted:
        return
    profiles = destination.profiles
    if current is None:  # created with its consent and creation time; identity, email and last visit follow
        current = await profiles._set_memory_enabled(user_id, wanted.memory_enabled, wanted.created_at)
        result.wrote("profile")
    _check_profile(current, wanted)
    if (current.identity, current.email, current.last_seen_at) != (wanted.identity, wanted.email, wanted.last_seen_at):
        current = await profiles._ensure(user_id, wanted.identity, wanted.email, wanted.last_seen_at)
        result.wrote("profile")
    if current.memory_enabled != wanted.memory_enabled:
        await profiles._set_memory_enabled(user_id, wanted.memory_enabled, wanted.last_seen_at)
        result.wrote("profile")


def _check_profile(current: Profile, wanted: Profile) -> None:
    """A profile can gain identity/email and move its last visit, but never change what it was created with."""
    differs = [
        name
        for name in ("created_at", "identity", "email")
        if getattr(current, name) is not None and getattr(current, name) != getattr(wanted, name)
    ]
    if differs:
        raise CopyConflictError(
            f"user {wanted.id}: the destination already has a different profile ({', '.join(differs)} differ); "
            "the copy never overwrites one: erase that user on the destination first if the source is right"
        )


async def _copy_memories(source: UserStore, destination: UserStore, user_id: str, result: UserCopy) -> None:
    current = {(m.category, m.key): m for m in await destination.memories.list(user_id)}
    wanted = await source.memories.list(user_id)
    for memory in reversed(wanted):  # oldest update first, as they were made
        have = current.pop((memory.category, memory.key), None)
        if have == memory:
            continue
        await _put_memory(destination, memory, have)
        result.wrote("memories")
    result.extras += len(current)


async def _copy_history(source: UserStore, destination: UserStore, user_id: str, result: UserCopy) -> None:
    """The audit trail arrives as the source has it (the copy's own memory writes leave no entries behind)."""
    wanted = await source.memories.history(user_id, MAX_MEMORY_CHANGES)
    if await destination.memories.history(user_id, MAX_MEMORY_CHANGES) != wanted:
        await destination.memories._replace_history(user_id, wanted)
        result.wrote("memory history")


async def _put_memory(destination: UserStore, memory: Memory, have: Memory | None) -> None:
    """Write one memory with its own id, creation time, update time and provenance."""
    memories = destination.memories
    origin = Provenance(memory.source, memory.thread_id, memory.item_id)
    args = (memory.user_id, memory.category, memory.key, memory.value, origin)
    # these writes append `copy` entries to the destination's audit trail; _copy_history then
    # replaces the whole trail with the source's
    if have is not None and (have.id, have.created_at) != (memory.id, memory.created_at):
        # another row under the same key
        await memories._delete(memory.user_id, memory.category, memory.key, change_note("copy"))
        have = None
    if have is None:  # the insert stamps created_at = updated_at = the given time and keeps the given id
        await memories._upsert(*args, memory.created_at, memory.id, change_note("copy"))
        if memory.updated_at == memory.created_at:
            return
    await memories._upsert(*args, memory.updated_at, memory.id, change_note("copy"))  # keeps id and created_at


async def _raw_threads(threads: ThreadStore, user_id: str) -> list[tuple[str, str]]:
    """(thread id, stored JSON) of every thread, oldest first."""
    rows: list[tuple[str, str]] = []
    after: str | None = None
    while True:
        page = await threads._page_threads(user_id, after, _PAGE, False)
        rows += [(thread.id, row) for thread, row in zip(codec.load_threads(page.rows), page.rows, strict=True)]
        if not page.has_more or not page.rows:
            return rows
        after = rows[-1][0]


async def _raw_items(threads: ThreadStore, user_id: str, thread_id: str) -> list[tuple[str, int, str]]:
    """(item id, sort key, stored JSON) of every item of a thread, in order."""
    rows: list[tuple[str, int, str]] = []
    after: str | None = None
    while True:
        page = await threads._page_items(user_id, thread_id, after, _PAGE, False)
        items = codec.load_items(page.rows)
        rows += [(item.id, codec.sort_key(item.created_at), row) for item, row in zip(items, page.rows, strict=True)]
        if not page.has_more or not page.rows:
            return rows
        after = rows[-1][0]


async def _copy_threads(source: ThreadStore, destination: ThreadStore, user_id: str, result: UserCopy) -> None:
    current = dict(await _raw_threads(destination, user_id))
    for thread_id, data in await _raw_threads(source, user_id):
        if current.pop(thread_id, None) != data:
            created_at = codec.load_thread(data).created_at
            await destination._put_thread(user_id, thread_id, codec.sort_key(created_at), data)
            result.wrote("threads")
        await _copy_items(source, destination, user_id, thread_id, result)
    result.extras += len(current)


async def _copy_items(
    source: ThreadStore, destination: ThreadStore, user_id: str, thread_id: str, result: UserCopy
) -> None:
    current = {item_id: data for item_id, _, data in await _raw_items(destination, user_id, thread_id)}
    for item_id, sort_key, data in await _raw_items(source, user_id, thread_id):
        result.items += 1
        if current.pop(item_id, None) == data:
            continue
        if not await destination._put_item(user_id, thread_id, item_id, sort_key, data):
            raise StoreError(f"user {user_id}: thread {thread_id} vanished from the destination during the copy")
        result.wrote("items")
    result.extras += len(current)


async def _copy_attachments(source: ThreadStore, destination: ThreadStore, user_id: str, result: UserCopy) -> list[str]:
    current = {codec.load_attachment(row).id: row for row in await destination._list_attachments(user_id)}
    ids = []
    for data in await source._list_attachments(user_id):
        attachment = codec.load_attachment(data)
        ids.append(attachment.id)
        if current.pop(attachment.id, None) == data:
            continue
        await destination._put_attachment(user_id, attachment.id, attachment.thread_id, data)
        result.wrote("attachments")
    result.extras += len(current)
    return ids


def _copy_bytes(files: FileDirs, user_id: str, attachment_id: str) -> bool:
    """Copy one attachment's bytes (atomically: temp file + rename); True if anything was written.

    Bytes the source does not have (an upload that never finished) are skipped.
    """
    source = files.source / user_id / attachment_id
    target = files.destination / user_id / attachment_id
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        return False
    try:
        if target.stat().st_size == len(data) and _digest(target.read_bytes()) == _digest(data):
            return False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".copy-{attachment_id}-{os.getpid()}"
    temp.write_bytes(data)
    os.replace(temp, target)
    return True


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
