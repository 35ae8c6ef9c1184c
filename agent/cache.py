"""The caller's memories held in process for one session, so recall never waits on the store.

Loaded once when the call starts (with the user's memory consent switch), at most
MEMORY_CACHE_LIMIT memories (the user's name, then the most recently updated); the memory
tools and background capture change the cache at once and send the same change to
the store through a write-behind queue, so a slow or failing store delays neither
the tool result nor the reply. With memory switched off the cache shows nothing and
takes no changes. Changes made elsewhere (chat, the API, another call) arrive through
the store's change feed (`agent.follow`): `refresh()` re-reads the store and keeps
this call's own changes that are not stored yet, so its echoes are neither applied
twice nor out of order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.writebehind import WriteBehind
from memory.models import Memory, normalize_category, normalize_key, validate_value
from memory.ranking import prepare
from memory.recall import newest_first, pinned_memories
from memory.settings import get_settings
from stores import UserStore
from stores.codec import utc_now
from stores.ids import new_id, validate_object_id, validate_user_id

logger = logging.getLogger("memory_agent.cache")

Key = tuple[str, str]  # (category, key), normalised
CONSENT: Key = ("", "memory_enabled")  # the consent switch, tracked like a key (no category is empty)


@dataclass(frozen=True)
class _Change:
    key: Key
    memory: Memory | None  # None: forgotten


class SessionMemories:
    """One user's memories for one session: an in-process dict plus write-behind to the store."""

    def __init__(
        self,
        store: UserStore,
        user_id: str,
        *,
        source: str = "voice",
        writer: WriteBehind | None = None,
        limit: int | None = None,
    ):
        self.store = store
        self.limit = limit or get_settings().memory_cache_limit
        self.partial = False  # the user has more memories than `limit`: the store has older ones
        self.user_id = validate_user_id(user_id)
        self.source = source
        self._entries: dict[Key, Memory] = {}
        self._changes: list[_Change] = []  # applied before the load finished; replayed over it
        self._loaded = asyncio.Event()
        self._load_task: asyncio.Task[None] | None = None
        self.load_error: str | None = None
        self.writes = writer or WriteBehind(f"memories {self.user_id}")
        self._enabled: bool | None = None  # the profile's switch, known after the load
        self._enabled_override: bool | None = None  # switched during this session (wins over the load)
        self.load_started: float | None = None  # time.monotonic() when the last store read began
        self.refreshes = 0
        self.stopped: str | None = None  # why this cache holds and writes nothing (erased, memory off)
        self._generation = 0  # counts local changes
        self._touched: dict[Key, int] = {}  # key -> generation of its last local change
        self._unstored: dict[Key, int] = {}  # key -> local writes queued and not finished

    # -- loading -----------------------------------------------------------
    def start_loading(self) -> None:
        """Begin reading the user's memories from the store (idempotent, returns at once)."""
        if self._load_task is None:
            self._load_task = asyncio.get_running_loop().create_task(self._load(), name=f"load-memories:{self.user_id}")

    async def _load(self) -> None:
        delay = 0.1
        while True:
            try:
                self.load_started = time.monotonic()
                rows = await self.store.memories.list(self.user_id)
                profile = await self.store.profiles.get(self.user_id)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the call going; retry in the background
                self.load_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                logger.warning("loading memories of user %s failed (%s); retrying", self.user_id, self.load_error)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
        entries = {(m.category, m.key): m for m in self._bounded(rows) if m.user_id == self.user_id}
        # tokenise now, off the event loop: the first reply's ranking then costs what later ones do
        await asyncio.to_thread(prepare, entries.values())
        for change in self._changes:
            if change.memory is None:
                entries.pop(change.key, None)
            else:
                entries[change.key] = change.memory
        self._entries = entries if self.stopped is None else {}  # erased while loading: hold nothing
        self._changes.clear()
        self._enabled = profile.memory_enabled if profile else self.store.profiles.default_memory_enabled
        self.load_error = None
        self._loaded.set()

    def _bounded(self, rows: list[Memory]) -> list[Memory]:
        """At most `limit` memories: the pinned ones (the user's name), then the most recently updated.

        Ranking stays inline on the reply's path only while the cache is bounded; older
        memories are still found by the recall tool, which then searches the store.
        """
        self.partial = len(rows) > self.limit
        if not self.partial:
            return rows
        pinned = pinned_memories(rows)[: self.limit]
        kept = {id(m) for m in pinned}
        rest = [m for m in newest_first(rows) if id(m) not in kept]
        return pinned + rest[: self.limit - len(pinned)]

    def overlay(self, stored: list[Memory]) -> list[Memory]:
        """Memories read from the store as this session sees them: its own changes (stored or not yet) win."""
        seen: list[Memory] = []
        for memory in stored:
            key = (memory.category, memory.key)
            if key in self._entries or key in self._unstored or key in self._touched:
                local = self._entries.get(key)
                if local is not None:
                    seen.append(local)
            else:
                seen.append(memory)
        return seen

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    async def wait_loaded(self, timeout: float | None) -> bool:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Wait for the load up to `timeout` seconds; True when the cache is complete."""
        if self._loaded.is_set():
            return True
        self.start_loading()
        try:
            await asyncio.wait_for(asyncio.shield(self._loaded.wait()), timeout=timeout)
        except TimeoutError:
            return False
        return True

    def snapshot(self) -> list[Memory]:
        """What is known right now (complete once `loaded`), as an independent list; empty with memory off."""
        if not self.memory_enabled:
            return []
        return list(self._entries.values())

    # -- changes made elsewhere ----------------------------------------------
    async def refresh(self) -> None:
        """Re-read the store (after a change elsewhere); this call's own unstored changes win.

        A key changed here while the read ran, or with a write still queued, keeps its
        local state: the store has not seen it yet, and its own echo triggers another
        refresh once it is stored. Raises what the store raises (the caller retries).
        """
        if not self.memory_enabled:
            return
        started_at = self._generation
        self.load_started = time.monotonic()
        rows = await self.store.memories.list(self.user_id)
        fresh = {(m.category, m.key): m for m in self._bounded(rows) if m.user_id == self.user_id}
        unseen = [m for key, m in fresh.items() if self._entries.get(key) != m]
        if len(unseen) > 50:  # a big change: tokenise off the event loop, like the first load
            await asyncio.to_thread(prepare, unseen)
        if not self.memory_enabled:
            return
        merged: dict[Key, Memory] = {}
        for key in fresh.keys() | self._entries.keys():
            local = self._unstored.get(key, 0) > 0 or self._touched.get(key, 0) > started_at
            memory = self._entries.get(key) if local else fresh.get(key)
            if memory is not None:
                merged[key] = memory
        self._entries = merged
        self.refreshes += 1

    def stop(self, reason: str) -> int:
        """Hold and write nothing more, for good (the user erased their data).

        Empties the cache and discards queued memory writes; returns how many were
        discarded. Later `remember`/`forget` raise ValueError naming `reason`.
        """
        self.stopped = reason
        self._entries = {}
        self._changes.clear()
        return self.writes.discard()

    def _check_running(self) -> None:
        if self.stopped is not None:
            raise ValueError(self.stopped)

    def _queue_write(self, key: Key, label: str, write: Callable[[], Awaitable[object]]) -> None:
        self._unstored[key] = self._unstored.get(key, 0) + 1

        def done() -> None:
            left = self._unstored.get(key, 0) - 1
            if left > 0:
                self._unstored[key] = left
            else:
                self._unstored.pop(key, None)

        self.writes.submit(label, write, on_done=done)

    # -- consent -----------------------------------------------------------
    @property
    def memory_enabled(self) -> bool:
        """The user's memory switch: as set in this session, else as loaded, else True (see `consent_known`)."""
        if self.stopped is not None:
            return False
        if self._enabled_override is not None:
            return self._enabled_override
        return self._enabled if self._enabled is not None else True

    @property
    def consent_known(self) -> bool:
        """True once the switch is known (loaded from the profile, or set in this session)."""
        return self._enabled_override is not None or self._enabled is not None

    def set_memory_enabled(self, enabled: bool) -> None:
        """Switch memory for this user now and queue storing the switch on the profile."""
        self._check_running()
        self._generation += 1
        self._touched[CONSENT] = self._generation
        self._enabled_override = enabled
        self._queue_write(
            CONSENT,
            f"memory {'on' if enabled else 'off'}",
            lambda: self.store.profiles.set_memory_enabled(self.user_id, enabled),
        )

    @property
    def generation(self) -> int:
        """Counts local changes; pass it to `apply_consent` from before the profile was read."""
        return self._generation

    def apply_consent(self, enabled: bool, read_since: int) -> bool | None:
        """The switch as stored elsewhere (read after local generation `read_since`).

        A switch flipped in this call and not stored yet wins. Switched off: the cache
        empties and queued memory writes are discarded. Returns the new state when it
        changed, else None (on again: call `refresh()` to reload).
        """
        if self.stopped is not None or self._unstored.get(CONSENT, 0) > 0 or self._touched.get(CONSENT, 0) > read_since:
            return None
        before = self.memory_enabled
        self._enabled, self._enabled_override = enabled, None
        if before == enabled:
            return None
        if not enabled:
            self._entries = {}
            self._changes.clear()
            self.writes.discard()
        return enabled

    # -- changes -----------------------------------------------------------
    def remember(
        self,
        category: str,
        key: str,
        value: str,
        *,
        source: str | None = None,
        thread_id: str | None = None,
        item_id: str | None = None,
    ) -> Memory:
        """Validate, update the cache now and queue the store write; ValueError for bad input or memory off."""
        self._check_running()
        if not self.memory_enabled:
            raise ValueError("memory is switched off for this user; nothing is stored")
        source = source or self.source
        if thread_id is not None:
            validate_object_id(thread_id, "thread id")
        if item_id is not None:
            validate_object_id(item_id, "item id")
        norm = (normalize_category(category), normalize_key(key))
        value = validate_value(value)
        old = self._entries.get(norm)
        now = utc_now()
        memory = Memory(
            id=old.id if old else new_id("mem"),
            user_id=self.user_id,
            category=norm[0],
            key=norm[1],
            value=value,
            source=source,
            thread_id=thread_id,
            item_id=item_id,
            created_at=old.created_at if old else now,
            updated_at=now,
        )
        self._apply(_Change(norm, memory))
        self._queue_write(
            norm,
            f"remember {norm[0]}/{norm[1]}",
            lambda: self.store.memories.remember(
                self.user_id, norm[0], norm[1], value, source=source, thread_id=thread_id, item_id=item_id
            ),
        )
        return memory

    def find_key(self, category: str, key: str) -> Memory | None:
        """The memory `forget` means: exact (category, key), else the only one with that key."""
        norm_key = normalize_key(key)
        try:
            exact = self._entries.get((normalize_category(category), norm_key))
        except ValueError:
            exact = None
        if exact is not None:
            return exact
        same_key = [m for m in self._entries.values() if m.key == norm_key]
        return same_key[0] if len(same_key) == 1 else None

    def forget(self, category: str, key: str) -> Memory | None:
        """Remove from the cache now and queue the store delete; returns what was forgotten."""
        self._check_running()
        found = self.find_key(category, key)
        norm = (found.category, found.key) if found else (normalize_category(category), normalize_key(key))
        self._apply(_Change(norm, None))
        self._queue_write(
            norm,
            f"forget {norm[0]}/{norm[1]}",
            lambda: self.store.memories.forget(self.user_id, norm[0], norm[1], source=self.source),
        )
        return found

    def _apply(self, change: _Change) -> None:
        self._generation += 1
        self._touched[change.key] = self._generation
        if change.memory is None:
            self._entries.pop(change.key, None)
        else:
            self._entries[change.key] = change.memory
        if not self._loaded.is_set():
            self._changes.append(change)

    async def aclose(self, timeout: float | None = None) -> int:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Stop loading and store every queued change; returns how many writes were lost."""
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        return await self.writes.aclose(timeout)
