"""A live call follows its own user's change feed: memories changed elsewhere reach the call.

Chat, the HTTP API or another call may change the caller's memories while the call
runs. The follower subscribes to `store.changes` for this user only and, per burst
of changes:
- memory change or resync -> `SessionMemories.refresh()` (re-read, keep own unstored changes);
- profile change -> re-read the memory switch; off: the cache empties and stops writing;
- erase (DELETE /me) -> the cache and the transcript stop writing, queued writes are
  discarded, the erase is repeated once (a write in flight when it happened may have
  landed after it), and `on_erased` ends the call.
Reads that fail (store down) are retried with back-off; the feed's own reconnects
deliver a resync, so nothing published meanwhile is missed for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from agent.cache import SessionMemories
from stores import StoreUnavailableError, UserStore
from stores.changes import Change, Subscription

logger = logging.getLogger("memory_agent.follow")

RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 2.0
SETTLE_TIMEOUT_S = 5.0  # how long an erase waits for a write that was already in flight
ERASED = "the user erased their data; this call stores nothing more"

Stopper = Callable[[], Awaitable[object]]


class ChangeFollower:
    """Follows one user's changes for one call; `start()` once, `aclose()` when the call ends."""

    def __init__(
        self,
        store: UserStore,
        memories: SessionMemories,
        *,
        on_erased: Callable[[], Awaitable[None]] | None = None,
        also_discard: list[Stopper] | None = None,
    ) -> None:
        self.store = store
        self.memories = memories
        self.user_id = memories.user_id
        self.on_erased = on_erased
        self.also_discard = also_discard or []  # more writers to stop on erase (the transcript)
        self.subscription: Subscription | None = None
        self.erased = asyncio.Event()
        self.latencies: list[float] = []  # publish -> applied, seconds (publisher's clock), for the bench
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"follow-changes:{self.user_id}")

    async def aclose(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = RETRY_INITIAL_S
        while True:
            try:
                subscription = self.store.changes.subscribe(self.user_id)
            except StoreUnavailableError:  # the process store is not open yet
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            self.subscription = subscription
            async with subscription:
                async for change in subscription:
                    batch = [change, *subscription.drain()]
                    if await self._handle(subscription, batch):
                        return
            return  # the store closed the feed: the worker is shutting down

    async def _handle(self, subscription: Subscription, batch: list[Change]) -> bool:
        """Apply one burst of changes; True when the call must stop following (erased)."""
        kinds = {change.kind for change in batch}
        if "erase" in kinds:
            await self._erase()
            return True
        if not await self.memories.wait_loaded(None):
            return False
        if kinds == {"resync"} and self._load_covers(subscription, batch):
            return False  # the first load read the store after the feed was listening
        if "profile" in kinds:
            await self._retrying(self._apply_consent)
        if kinds & {"memory", "resync"} and self.memories.memory_enabled:
            await self._retrying(self.memories.refresh)
        now = time.time()
        self.latencies.extend(now - change.at for change in batch if change.kind != "resync")
        return False

    def _load_covers(self, subscription: Subscription, batch: list[Change]) -> bool:
        started = self.memories.load_started
        since = subscription.listening_since
        return (
            all(change.op == "listening" for change in batch)
            and started is not None
            and since is not None
            and started >= since
            and self.memories.refreshes == 0
        )

    async def _apply_consent(self) -> None:
        since = self.memories.generation
        profile = await self.store.profiles.get(self.user_id)
        enabled = profile.memory_enabled if profile is not None else self.store.profiles.default_memory_enabled
        changed = self.memories.apply_consent(enabled, since)
        if changed is False:
            logger.info("memory switched off for user %s elsewhere; the call forgot its cache", self.user_id)
        elif changed is True:
            await self.memories.refresh()
            logger.info("memory switched on again for user %s elsewhere", self.user_id)

    async def _retrying(self, action: Callable[[], Awaitable[None]]) -> None:
        delay = RETRY_INITIAL_S
        while True:
            try:
                await action()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store down: the call goes on with what it has
                logger.warning(
                    "applying a change of user %s failed (%s); retrying in %.1fs",
                    self.user_id,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)

    async def _erase(self) -> None:
        """Stop every writer of the call, let a write in flight finish, erase once more, end the call."""
        self.memories.stop(ERASED)
        for discard in self.also_discard:
            await discard()
        await self.memories.writes.flush(SETTLE_TIMEOUT_S)
        try:
            # a write that was in flight when the erase ran (or landed just before we heard of it) is gone too
            await self.store.forget_user(self.user_id, announce=False)
        except Exception as exc:
            logger.error("repeating the erase of user %s failed (%s)", self.user_id, type(exc).__name__)
        self.erased.set()
        logger.info("user %s erased their data during the call; ending the call", self.user_id)
        if self.on_erased is not None:
            await self.on_erased()
