"""A write-behind queue: storage writes leave the voice reply path and are retried until stored.

Writes are applied one at a time in submission order (a `forget` after a `remember`
of the same key must land second). Every write must be idempotent (an upsert by a
fixed id) because a write that timed out may still have reached the store, and it is
then sent again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatkit.store import NotFoundError

from stores import StoreUnavailableError

logger = logging.getLogger("memory_agent.writebehind")

Write = Callable[[], Awaitable[object]]

# errors that retrying cannot fix: the write itself is wrong
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, NotFoundError)
# errors that mean "the store is not reachable right now": retried for as long as it takes
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailableError, TimeoutError, OSError)
# any other error is retried this many times, then the write is dropped so it cannot block the queue
MAX_UNEXPECTED_ATTEMPTS = 5


@dataclass
class _Pending:
    label: str
    write: Write
    attempts: int = 0
    on_done: Callable[[], None] | None = None  # called once when the write leaves the queue (stored or not)
    last_try: bool = False  # discarded while being stored: no retry


class WriteBehind:
    """Runs submitted writes in order in a background task, retrying with back-off on failure.

    `submit` never blocks; `aclose` waits until everything submitted is stored
    (or a timeout passes, in which case the loss is logged loudly with a count).
    """

    def __init__(
        self,
        name: str,
        *,
        initial_backoff: float = 0.05,
        max_backoff: float = 2.0,
        attempt_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._attempt_timeout = attempt_timeout
        self.stored = 0
        self.retries = 0
        self.dropped = 0
        self.discarded = 0
        self._in_flight: _Pending | None = None

    @property
    def pending(self) -> int:
        """Writes submitted but not yet stored."""
        return len(self._queue)

    def submit(self, label: str, write: Write, *, on_done: Callable[[], None] | None = None) -> None:
        """Queue `write` (a no-argument coroutine factory); returns at once.

        `on_done` runs once when the write leaves the queue: stored, dropped or discarded.
        """
        if self._closed:
            raise RuntimeError(f"{self.name}: write-behind queue is closed; {label} was not queued")
        self._queue.append(_Pending(label, write, on_done=on_done))
        self._idle.clear()
        self._wakeup.set()
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # submitted outside a loop: the worker starts in flush()/aclose()
            return
        self._task = loop.create_task(self._run(), name=f"write-behind:{self.name}")

    async def _run(self) -> None:
        backoff = self._initial_backoff
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            head = self._queue[0]
            head.attempts += 1
            self._in_flight = head
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
                # arrives as the write completes, and aclose() would then wait on a worker that never stops
                async with asyncio.timeout(self._attempt_timeout):
                    await head.write()
            except asyncio.CancelledError:
                raise
            except PERMANENT_ERRORS as exc:
                self._pop(head)
                self.dropped += 1
                logger.error("%s: dropping %s, the store rejected it: %s", self.name, head.label, exc)
                continue
            except Exception as exc:  # store down, timeout, connection reset: retry
                if head.last_try:
                    self._pop(head)  # discarded while it was being stored: never retried
                    continue
                if not isinstance(exc, TRANSIENT_ERRORS) and head.attempts >= MAX_UNEXPECTED_ATTEMPTS:
                    self._pop(head)
                    self.dropped += 1
                    logger.error(
                        "%s: dropping %s after %d attempts failed with an unexpected error: %s",
                        self.name,
                        head.label,
                        head.attempts,
                        type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}",
                    )
                    continue
                self.retries += 1
                if head.attempts == 1 or head.attempts % 10 == 0:
                    logger.warning(
                        "%s: storing %s failed (attempt %d, %d queued), retrying in %.2fs: %s",
                        self.name,
                        head.label,
                        head.attempts,
                        len(self._queue),
                        backoff,
                        type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}",
                    )
                self._in_flight = None
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff, backoff * 2)
                continue
            self._pop(head)
            self.stored += 1
            backoff = self._initial_backoff
            if head.attempts > 1:
                logger.info("%s: stored %s after %d attempts", self.name, head.label, head.attempts)

    def _pop(self, head: _Pending) -> None:
        """Remove the finished head (if `discard` has not already) and report it done."""
        self._in_flight = None
        if self._queue and self._queue[0] is head:
            self._queue.popleft()
        if head.on_done is not None:
            head.on_done()

    def discard(self) -> int:
        """Drop every write not being stored right now; returns how many were dropped.

        For data the user erased or stopped allowing while it waited (DELETE /me, memory
        switched off): those writes must never reach the store. A write already in flight
        finishes or fails once (never retried); `flush()` waits for it.
        """
        in_flight = self._in_flight
        dropped = [p for p in self._queue if p is not in_flight]
        self._queue.clear()
        if in_flight is not None:
            in_flight.last_try = True
            self._queue.append(in_flight)
        else:
            self._idle.set()
        for pending in dropped:
            if pending.on_done is not None:
                pending.on_done()
        self.discarded += len(dropped)
        if dropped:
            logger.info("%s: discarded %d queued writes", self.name, len(dropped))
        return len(dropped)

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Wait until every write submitted so far is stored; False if `timeout` passed first."""
        if not self._queue:
            return True
        self._ensure_worker()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float | None = None) -> int:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Flush, then stop the worker. Returns how many writes could not be stored (0 normally)."""
        self._closed = True
        flushed = await self.flush(timeout)
        lost = 0 if flushed else len(self._queue)
        if lost:
            logger.error(
                "%s: %d writes could NOT be stored within %.1fs (store unreachable); they are lost: %s",
                self.name,
                lost,
                timeout or 0.0,
                ", ".join(p.label for p in list(self._queue)[:10]),
            )
        if self._task is not None:
            await _stop(self._task)
            self._task = None
        return lost


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel the worker and wait until it has really stopped (re-cancelling if a cancel was lost)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
