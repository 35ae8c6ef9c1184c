"""The per-user change feed: `store.changes`, so live calls see what other processes change.

Every successful memory, profile or whole-user erase write is published on the
user's channel (the hook is in `stores.base`, so every backend path publishes the
same way). A subscriber follows one user only:

    async with store.changes.subscribe(user_id) as changes:
        async for change in changes:
            ...   # re-read what `change.kind` names; never trust the feed for data

Changes carry no user data (no keys, no values): they say *that* something of the
user changed, and the subscriber re-reads the store. That keeps memory text out of
pub/sub, NOTIFY payloads and the SQLite changes table, and makes delivery order and
duplicates harmless (a re-read always converges on the stored state).

A `resync` change is delivered (locally, never published) when the subscription
starts listening and after every reconnect of the backend's listener: changes may
have been missed, so the subscriber should re-read everything.

The transport is per backend (Redis pub/sub, Postgres LISTEN/NOTIFY, a polled
SQLite table, in-process for `memory://`); the local fan-out to subscriptions is
shared here. One listener per store (per process), whatever the number of calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

from stores.ids import validate_user_id

logger = logging.getLogger(__name__)

ChangeKind = Literal["memory", "profile", "erase", "resync"]
KINDS: frozenset[str] = frozenset({"memory", "profile", "erase", "resync"})
MAX_QUEUED = 1000  # a subscriber this far behind gets one resync instead of the backlog


@dataclass(frozen=True)
class Change:
    """Something of `user_id` changed: re-read it. `at` is the publisher's wall clock (for latency stats)."""

    user_id: str
    kind: ChangeKind
    op: str | None = None  # what happened, for logs: remember, forget, forget_from, memory_enabled, ...
    at: float = field(default_factory=time.time)

    def payload(self) -> str:
        """The wire form: no user id (the channel names the user) and no user data."""
        return json.dumps({"k": self.kind, "o": self.op, "t": self.at}, separators=(",", ":"))

    @classmethod
    def from_payload(cls, user_id: str, payload: str | bytes) -> Change:
        """Parse a payload; anything unreadable becomes a `resync` (re-read everything)."""
        try:
            data = json.loads(payload)
            kind = data["k"]
            if kind not in KINDS:
                raise ValueError(kind)
            op = data.get("o")
            return cls(user_id, kind, op if isinstance(op, str) else None, float(data.get("t") or time.time()))
        except (ValueError, TypeError, KeyError):
            return cls(user_id, "resync", "unreadable change")


def channel_digest(user_id: str) -> str:
    """A fixed-length name for the user's channel where user ids must not appear (SQLite rows, NOTIFY names)."""
    return hashlib.sha256(f"memory-agent-changes:{user_id}".encode()).hexdigest()[:40]


class Subscription:
    """One follower of one user's changes; an async iterator and an async context manager.

    `listening` is set once the backend delivers this user's changes (and cleared while
    its listener reconnects); each time it becomes set a `resync` change is queued.
    """

    def __init__(self, feed: ChangeFeed, user_id: str) -> None:
        self.feed = feed
        self.user_id = user_id
        self.listening = asyncio.Event()
        self.listening_since: float | None = None  # time.monotonic() when listening was last set
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._registered = False
        self._closed = False

    def start(self) -> Self:
        """Register with the feed (idempotent); changes published from now on are delivered."""
        if not self._registered and not self._closed:
            self._registered = True
            self.feed._add(self)
        return self

    def close(self) -> None:
        """Stop following; a pending `async for` ends."""
        if self._closed:
            return
        self._closed = True
        if self._registered:
            self.feed._remove(self)
        self._queue.put_nowait(None)

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        """Changes queued and not yet read."""
        return self._queue.qsize()

    def _push(self, change: Change) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            while not self._queue.empty():  # too far behind: one resync replaces the backlog
                self._queue.get_nowait()
            change = Change(self.user_id, "resync", "subscriber fell behind")
        self._queue.put_nowait(change)

    def _set_listening(self, on: bool) -> None:
        if on and not self.listening.is_set():
            self.listening_since = time.monotonic()
            self.listening.set()
            self._push(Change(self.user_id, "resync", "listening"))
        elif not on:
            self.listening.clear()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Change:
        self.start()
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        change = await self._queue.get()
        if change is None:
            raise StopAsyncIteration
        return change

    def drain(self) -> list[Change]:
        """Every change already queued, without waiting (to coalesce a burst into one re-read)."""
        out: list[Change] = []
        while not self._queue.empty():
            change = self._queue.get_nowait()
            if change is None:
                self._queue.put_nowait(None)  # keep the end marker for __anext__
                break
            out.append(change)
        return out


class ChangeFeed:
    """Local fan-out to subscriptions; backends add the transport (`_send`, `_listen`, `_unlisten`).

    `publish` never raises: the write it reports has already succeeded, and a missed
    change is repaired by the subscriber's resync after the listener reconnects.
    """

    kind = "in-process"

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._closed = False
        self.published = 0
        self.publish_failures = 0

    # -- public ---------------------------------------------------------------
    def subscribe(self, user_id: str) -> Subscription:
        """A subscription to one user's changes (registered on `async with`/first `async for`, or `start()`)."""
        validate_user_id(user_id)
        return Subscription(self, user_id)

    async def publish(self, change: Change) -> None:
        """Send `change` on its user's channel; failures are logged, never raised."""
        if self._closed:
            return
        try:
            await self._send(change)
            self.published += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.publish_failures += 1
            logger.warning(
                "publishing a %s change of user %s on the %s change feed failed (%s); live calls of the user "
                "catch up when their listener reconnects",
                change.kind,
                change.user_id,
                self.kind,
                type(exc).__name__,
            )

    def users(self) -> list[str]:
        """Users with at least one local subscription."""
        return list(self._subscriptions)

    def is_listening(self, user_id: str) -> bool:
        """Whether changes of `user_id` published from now on reach this process's subscribers."""
        return self._is_listening(user_id)

    async def aclose(self) -> None:
        """End every subscription and stop the listener (the store calls this before closing its pool)."""
        if self._closed:
            return
        self._closed = True
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription.close()
        self._subscriptions.clear()
        await self._stop()

    # -- for transports ---------------------------------------------------------
    def _deliver(self, user_id: str, change: Change) -> None:
        """Hand a received change to every local subscription of `user_id`."""
        for subscription in list(self._subscriptions.get(user_id, ())):
            subscription._push(change)

    def _set_listening(self, user_id: str, on: bool) -> None:
        for subscription in list(self._subscriptions.get(user_id, ())):
            subscription._set_listening(on)

    def _set_all_listening(self, on: bool) -> None:
        for user_id in list(self._subscriptions):
            self._set_listening(user_id, on)

    def _add(self, subscription: Subscription) -> None:
        if self._closed:
            subscription.close()
            return
        subscribers = self._subscriptions.setdefault(subscription.user_id, set())
        subscribers.add(subscription)
        if len(subscribers) == 1:
            self._listen(subscription.user_id)
        elif self._is_listening(subscription.user_id):
            subscription._set_listening(True)

    def _remove(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.user_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscriptions[subscription.user_id]
            if not self._closed:
                self._unlisten(subscription.user_id)

    # -- transport hooks (in-process defaults) ------------------------------------
    async def _send(self, change: Change) -> None:
        self._deliver(change.user_id, change)

    def _listen(self, user_id: str) -> None:
        """Start delivering `user_id`'s changes (must not block; confirm with `_set_listening`)."""
        self._set_listening(user_id, True)

    def _unlisten(self, user_id: str) -> None:
        """No local subscriber is left for `user_id`."""

    def _stopping(self) -> bool:
        """For listener loops: closed, or cancelled (some drivers swallow a CancelledError and carry on)."""
        task = asyncio.current_task()
        return self._closed or (task is not None and task.cancelling() > 0)

    def _is_listening(self, user_id: str) -> bool:
        return any(s.listening.is_set() for s in self._subscriptions.get(user_id, ()))

    async def _stop(self) -> None:
        """Stop the listener task and release its connection."""


STOP_TIMEOUT_S = 5.0


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a listener task and wait for it (bounded), without swallowing our own cancellation."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
    except TimeoutError:
        logger.warning("a change listener did not stop within %.0fs; leaving it behind", STOP_TIMEOUT_S)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception as exc:  # the listener's own failure is already logged
        logger.debug("change listener ended with %s", type(exc).__name__)


__all__ = ["Change", "ChangeFeed", "ChangeKind", "Subscription", "cancel_task", "channel_digest"]


class ListenerFeed(ChangeFeed):
    """A feed whose transport is one background listener over the wanted users' channels (Redis, Postgres).

    Subclasses name each user's channel and run the listen loop; subscribing and
    unsubscribing only edit `_channels` and wake the loop, which (re)subscribes itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self._channels: dict[str, str] = {}  # channel -> user id, wanted
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

    def _channel(self, user_id: str) -> str:
        raise NotImplementedError

    async def _listen_loop(self) -> None:
        raise NotImplementedError

    def _listen(self, user_id: str) -> None:
        self._channels[self._channel(user_id)] = user_id
        self._wakeup.set()
        if self._task is None or self._task.done():
            name = f"{self.kind.lower()}-change-listener"
            self._task = asyncio.get_running_loop().create_task(self._listen_loop(), name=name)

    def _unlisten(self, user_id: str) -> None:
        self._channels.pop(self._channel(user_id), None)
        self._wakeup.set()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        self._wakeup.set()  # the loop also checks `_closed`: a driver may swallow the cancellation
        await cancel_task(task)
