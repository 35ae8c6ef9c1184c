"""The in-process backend (`memory://`): dictionaries, for tests and development.

Each operation runs without awaiting, so on one event loop it is atomic.
"""

from __future__ import annotations

import bisect
import builtins
import itertools
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from memory.models import MAX_MEMORY_CHANGES, Memory, MemoryChange, Profile, Provenance
from memory.settings import Settings
from stores.base import ChangeNote, MemoryStore, ProfileStore, RawPage, ThreadStore, UserStore
from stores.changes import ChangeFeed
from stores.inprocess.search import TermIndex

Position = tuple[int, int, str]  # (sort key, insertion seq, id)


@dataclass
class _Ordered:
    """Rows kept in (sort key, seq) order with O(log n) cursor lookups."""

    order: list[Position] = field(default_factory=list)
    rows: dict[str, tuple[Position, str]] = field(default_factory=dict)

    def put(self, row_id: str, position: Position, data: str) -> None:
        existing = self.rows.get(row_id)
        if existing is not None:
            self.rows[row_id] = (existing[0], data)
            return
        bisect.insort(self.order, position)
        self.rows[row_id] = (position, data)

    def remove(self, row_id: str) -> None:
        existing = self.rows.pop(row_id, None)
        if existing is not None:
            del self.order[bisect.bisect_left(self.order, existing[0])]

    def page(self, after: str | None, limit: int, descending: bool) -> RawPage:
        """Rows strictly after the cursor, reading only the page's slice of the index."""
        total = len(self.order)
        if descending:
            end = total  # exclusive upper bound in ascending index space
            if after is not None:
                cursor = self.rows.get(after)
                if cursor is None:
                    return RawPage([], False)
                end = bisect.bisect_left(self.order, cursor[0])
            selected = self.order[max(0, end - limit) : end][::-1]
            has_more = end - limit > 0
        else:
            start = 0
            if after is not None:
                cursor = self.rows.get(after)
                if cursor is None:
                    return RawPage([], False)
                start = bisect.bisect_left(self.order, cursor[0]) + 1
            selected = self.order[start : start + limit]
            has_more = start + limit < total
        return RawPage([self.rows[position[2]][1] for position in selected], has_more)


@dataclass
class _UserData:
    threads: _Ordered = field(default_factory=_Ordered)
    items: dict[str, _Ordered] = field(default_factory=dict)
    attachments: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    memories: dict[tuple[str, str], Memory] = field(default_factory=dict)
    # the search index, kept in step by every memory write
    terms: TermIndex = field(default_factory=TermIndex)
    changes: deque[MemoryChange] = field(default_factory=lambda: deque(maxlen=MAX_MEMORY_CHANGES))
    profile: Profile | None = None

    def unindex(self, memory: Memory) -> None:
        self.terms.remove(memory)

    def index(self, memory: Memory) -> None:
        self.terms.add(memory)


class _Data:
    def __init__(self) -> None:
        self.users: dict[str, _UserData] = {}
        self.seq = itertools.count()

    def user(self, user_id: str) -> _UserData:
        return self.users.setdefault(user_id, _UserData())

    def peek(self, user_id: str) -> _UserData | None:
        return self.users.get(user_id)


class InProcessThreadStore(ThreadStore):
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def _get_thread(self, user_id: str, thread_id: str) -> str | None:
        user = self._data.peek(user_id)
        row = user.threads.rows.get(thread_id) if user else None
        return row[1] if row else None

    async def _put_thread(self, user_id: str, thread_id: str, sort_key: int, data: str) -> None:
        user = self._data.user(user_id)
        user.threads.put(thread_id, (sort_key, next(self._data.seq), thread_id), data)
        user.items.setdefault(thread_id, _Ordered())

    async def _page_threads(self, user_id: str, after: str | None, limit: int, descending: bool) -> RawPage:
        user = self._data.peek(user_id)
        return user.threads.page(after, limit, descending) if user else RawPage([], False)

    async def _delete_thread(self, user_id: str, thread_id: str) -> list[str]:
        user = self._data.peek(user_id)
        if user is None:
            return []
        user.threads.remove(thread_id)
        user.items.pop(thread_id, None)
        gone = [aid for aid, (tid, _) in user.attachments.items() if tid == thread_id]
        for attachment_id in gone:
            del user.attachments[attachment_id]
        return gone

    def _thread_items(self, user_id: str, thread_id: str) -> _Ordered | None:
        user = self._data.peek(user_id)
        return user.items.get(thread_id) if user and thread_id in user.threads.rows else None

    async def _get_item(self, user_id: str, thread_id: str, item_id: str) -> str | None:
        items = self._thread_items(user_id, thread_id)
        row = items.rows.get(item_id) if items else None
        return row[1] if row else None

    async def _put_item(self, user_id: str, thread_id: str, item_id: str, sort_key: int, data: str) -> bool:
        items = self._thread_items(user_id, thread_id)
        if items is None:
            return False
        items.put(item_id, (sort_key, next(self._data.seq), item_id), data)
        return True

    async def _page_items(
        self, user_id: str, thread_id: str, after: str | None, limit: int, descending: bool
    ) -> RawPage:
        items = self._thread_items(user_id, thread_id)
        return items.page(after, limit, descending) if items else RawPage([], False)

    async def _delete_item(self, user_id: str, thread_id: str, item_id: str) -> None:
        items = self._thread_items(user_id, thread_id)
        if items:
            items.remove(item_id)

    async def _get_attachment(self, user_id: str, attachment_id: str) -> str | None:
        user = self._data.peek(user_id)
        row = user.attachments.get(attachment_id) if user else None
        return row[1] if row else None

    async def _put_attachment(self, user_id: str, attachment_id: str, thread_id: str | None, data: str) -> None:
        self._data.user(user_id).attachments[attachment_id] = (thread_id, data)

    async def _delete_attachment(self, user_id: str, attachment_id: str) -> bool:
        user = self._data.peek(user_id)
        return bool(user and user.attachments.pop(attachment_id, None))

    async def _list_attachments(self, user_id: str) -> list[str]:
        user = self._data.peek(user_id)
        return [data for _, data in user.attachments.values()] if user else []

    async def _old_threads(self, created_before: int, batch: int) -> AsyncIterator[list[tuple[str, str, str]]]:
        found = sorted(
            (position, user_id, data)
            for user_id, user in list(self._data.users.items())
            for position, data in list(user.threads.rows.values())
            if position[0] < created_before
        )
        for start in range(0, len(found), batch):
            yield [(user_id, position[2], data) for position, user_id, data in found[start : start + batch]]


class InProcessMemoryStore(MemoryStore):
    def __init__(self, data: _Data) -> None:
        self._data = data

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
        user = self._data.user(user_id)
        memories = user.memories
        old = memories.get((category, key))
        memory = Memory(
            id=old.id if old else new_id,
            user_id=user_id,
            category=category,
            key=key,
            value=value,
            source=origin.source,
            thread_id=origin.thread_id,
            item_id=origin.item_id,
            created_at=old.created_at if old else now,
            updated_at=now,
        )
        user = self._data.user(user_id)
        if old is not None:
            user.unindex(old)
        memories[(category, key)] = memory
        user.index(memory)
        user.changes.append(change.entry(user_id, "update" if old else "remember", category, key, memory.id))
        return memory

    async def _get(self, user_id: str, category: str, key: str) -> Memory | None:
        user = self._data.peek(user_id)
        return user.memories.get((category, key)) if user else None

    async def _list(self, user_id: str, category: str | None) -> list[Memory]:
        user = self._data.peek(user_id)
        if user is None:
            return []
        return [m for m in user.memories.values() if category is None or m.category == category]

    async def _delete(
        self, user_id: str, category: str, key: str, change: ChangeNote, *, updated_before: datetime | None = None
    ) -> bool:
        user = self._data.peek(user_id)
        memory = user.memories.get((category, key)) if user else None
        if user is None or memory is None or (updated_before is not None and memory.updated_at >= updated_before):
            return False
        del user.memories[(category, key)]
        user.unindex(memory)
        user.changes.append(change.entry(user_id, "forget", category, key, memory.id))
        return True

    async def _search(self, user_id: str, terms: list[str], limit: int) -> list[Memory]:
        user = self._data.peek(user_id)
        if user is None:
            return []
        return [user.memories[ref] for ref in user.terms.best(terms, len(user.memories), limit)]

    async def _delete_from(self, user_id: str, thread_id: str, change: ChangeNote) -> int:
        user = self._data.peek(user_id)
        if user is None:
            return 0
        gone = [slot for slot, m in user.memories.items() if m.thread_id == thread_id]
        for n, slot in enumerate(gone, start=1):
            memory = user.memories.pop(slot)
            user.unindex(memory)
            user.changes.append(change.entry(user_id, "forget", *slot, memory.id, n))
        return len(gone)

    async def _history(self, user_id: str, limit: int) -> builtins.list[MemoryChange]:
        user = self._data.peek(user_id)
        return list(reversed(user.changes))[:limit] if user else []

    async def _replace_history(self, user_id: str, changes: builtins.list[MemoryChange]) -> None:
        self._data.user(user_id).changes = deque(reversed(changes), maxlen=MAX_MEMORY_CHANGES)

    async def _stale(self, updated_before: datetime, batch: int) -> AsyncIterator[builtins.list[tuple[str, str, str]]]:
        found = [
            (m.user_id, m.category, m.key)
            for user in list(self._data.users.values())
            for m in list(user.memories.values())
            if m.updated_at < updated_before
        ]
        for start in range(0, len(found), batch):
            yield found[start : start + batch]


class InProcessProfileStore(ProfileStore):
    def __init__(self, data: _Data) -> None:
        self._data = data

    async def _ensure(self, user_id: str, identity: str | None, email: str | None, now: datetime) -> Profile:
        user = self._data.user(user_id)
        if user.profile is None:
            user.profile = Profile(
                id=user_id,
                identity=identity,
                email=email,
                is_first_login=True,
                memory_enabled=self.default_memory_enabled,
                created_at=now,
                last_seen_at=now,
            )
            return user.profile
        old = user.profile
        user.profile = old.model_copy(
            update={
                "identity": old.identity or identity,
                "email": old.email or email,
                "is_first_login": False,
                "last_seen_at": now,
            }
        )
        return user.profile

    async def _get(self, user_id: str) -> Profile | None:
        user = self._data.peek(user_id)
        return user.profile if user else None

    async def _set_memory_enabled(self, user_id: str, enabled: bool, now: datetime) -> Profile:
        user = self._data.user(user_id)
        if user.profile is None:
            user.profile = Profile(id=user_id, memory_enabled=enabled, created_at=now, last_seen_at=now)
        else:
            user.profile = user.profile.model_copy(update={"memory_enabled": enabled, "is_first_login": False})
        return user.profile


class InProcessStore(UserStore):
    """Everything in one process's memory; lost on exit."""

    def __init__(self) -> None:
        data = _Data()
        self._data = data
        self.url = "memory://"
        self.threads = InProcessThreadStore(data)
        self.memories = InProcessMemoryStore(data)
        self.profiles = InProcessProfileStore(data)
        self._use_changes(ChangeFeed())  # in-process: publishing delivers directly

    async def _forget_user(self, user_id: str) -> None:
        self._data.users.pop(user_id, None)

    async def _list_users(self) -> list[str]:
        return [
            user_id
            for user_id, data in self._data.users.items()
            if data.profile is not None
            or data.memories
            or data.changes
            or data.attachments
            or len(data.threads.rows) > 0
        ]

    async def ping(self) -> None:
        return None


async def open(url: str, settings: Settings) -> InProcessStore:
    """Open a fresh in-process store (each call has its own data)."""
    return InProcessStore()
