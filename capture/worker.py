"""Background memory capture for one conversation: completed turns in, validated operations out.

Off the reply path: `add` returns at once; one worker task per conversation sends at
most one capture request at a time, and turns that arrive meanwhile are coalesced
into the next request. A failing or slow endpoint is retried with back-off, then the
turns are dropped and counted (never an exception in the call). Used by the voice
agent (one per session) and the chat API (one per thread); the pure parts live in
`memory.capture`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from openai import APIStatusError

from capture.client import CaptureClient
from memory.capture import Operation, build_messages, parse_operations, worth_capturing
from memory.models import Memory

logger = logging.getLogger("memory_agent.capture")

MAX_TURNS_PER_REQUEST = 8  # coalesced turns beyond this wait for the next request
BACKOFF_S = (0.5, 1.0, 2.0)  # waits between attempts; len + 1 attempts in all


@dataclass(frozen=True)
class CaptureTurn:
    """One completed user turn: what the user said, its item id, and the assistant's words before it."""

    text: str
    item_id: str | None = None
    previous: str | None = None  # the assistant message the user answered, for context


@dataclass
class CaptureStats:
    """What capture did in one conversation (for the end-of-call log line, tests and the bench)."""

    turns: int = 0  # user turns offered
    skipped: int = 0  # turns that needed no request (pre-filter, memory off)
    requests: int = 0  # capture requests sent (attempts included)
    failures: int = 0  # attempts that failed (endpoint down, slow, HTTP error)
    dropped_turns: int = 0  # turns given up on after every attempt failed (or at shutdown)
    bad_answers: int = 0  # answers with unusable parts (dropped, logged once each)
    applied: int = 0  # operations applied
    stored_at: list[float] = field(default_factory=list)  # time.monotonic() when a batch's ops were applied


Apply = Callable[[list[Operation], CaptureTurn], Awaitable[None]]
Memories = Callable[[], Awaitable[Sequence[Memory]]]
Enabled = Callable[[], Awaitable[bool]]


class TurnCapture:
    """Captures one user's conversation in the background; at most one request in flight."""

    def __init__(
        self,
        client: CaptureClient,
        user_id: str,
        *,
        memories: Memories,
        apply: Apply,
        enabled: Enabled,
        backoff: Sequence[float] | None = None,
        name: str = "",
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.stats = CaptureStats()
        self._memories = memories
        self._apply = apply
        self._enabled = enabled
        self._backoff = tuple(BACKOFF_S if backoff is None else backoff)
        self._name = name or user_id
        self._pending: list[CaptureTurn] = []
        self._inflight: list[CaptureTurn] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._inflight)

    def add(self, turn: CaptureTurn) -> bool:
        """Offer a completed user turn; True if it was queued for a capture request. Returns at once."""
        self.stats.turns += 1
        if self._closed or not worth_capturing(turn.text):
            self.stats.skipped += 1
            return False
        self._pending.append(turn)
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"memory-capture:{self._name}")
        return True

    async def _run(self) -> None:
        try:
            while self._pending:
                self._inflight = self._pending[:MAX_TURNS_PER_REQUEST]
                del self._pending[: len(self._inflight)]
                await self._capture(self._inflight)
                self._inflight = []
        finally:
            if not self._pending:
                self._idle.set()

    async def _capture(self, batch: list[CaptureTurn]) -> None:
        for attempt in range(len(self._backoff) + 1):
            if not await self._enabled():  # switched off while waiting: nothing is sent or stored
                self.stats.skipped += len(batch)
                return
            try:
                content = await self._request(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # endpoint down, slow or refusing: retry, then drop
                self.stats.failures += 1
                if attempt == len(self._backoff):
                    self.stats.dropped_turns += len(batch)
                    logger.warning(
                        "memory capture for user %s: dropping %d turn(s) after %d failed attempts (%s)",
                        self.user_id,
                        len(batch),
                        attempt + 1,
                        _reason(exc),
                    )
                    return
                if attempt == 0:
                    logger.info(
                        "memory capture for user %s failed (%s); retrying in %.1fs",
                        self.user_id,
                        _reason(exc),
                        self._backoff[attempt],
                    )
                await asyncio.sleep(self._backoff[attempt])
                continue
            try:
                await self._use(content, batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store refused or is down: these turns' facts are lost
                self.stats.dropped_turns += len(batch)
                logger.warning(
                    "memory capture for user %s: storing the captured operations failed (%s); %d turn(s) dropped",
                    self.user_id,
                    type(exc).__name__,
                    len(batch),
                )
            return

    async def _request(self, batch: list[CaptureTurn]) -> str | None:
        exchange: list[tuple[str, str]] = []
        for turn in batch:
            if turn.previous:
                exchange.append(("assistant", turn.previous))
            exchange.append(("user", turn.text))
        messages = build_messages(exchange, await self._memories())
        self.stats.requests += 1
        return await self.client.complete(messages)

    async def _use(self, content: str | None, batch: list[CaptureTurn]) -> None:
        parsed = parse_operations(content)
        if parsed.problems:
            self.stats.bad_answers += 1
            # the user id and what was wrong; never the values (they are the user's words)
            logger.warning(
                "memory capture for user %s: dropped unusable output (%s); kept %d operation(s)",
                self.user_id,
                "; ".join(parsed.problems[:5]),
                len(parsed.operations),
            )
        if parsed.operations and await self._enabled():
            await self._apply(parsed.operations, batch[-1])
            self.stats.applied += len(parsed.operations)
        self.stats.stored_at.append(time.monotonic())

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Wait until every turn offered so far is captured (or dropped); False if `timeout` passed first."""
        if not self.busy:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float | None = None) -> int:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Capture what is pending within `timeout`, then stop; returns how many turns were dropped here."""
        self._closed = True
        flushed = await self.flush(timeout)
        lost = 0 if flushed else len(self._pending) + len(self._inflight)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if lost:
            self.stats.dropped_turns += lost
            logger.warning(
                "memory capture for user %s: %d turn(s) not captured within the %.1fs shutdown deadline",
                self.user_id,
                lost,
                timeout or 0.0,
            )
        self._pending.clear()
        self._inflight = []
        return lost

    def summary(self) -> str:
        """One line for the end-of-call log (counts only)."""
        s = self.stats
        return (
            f"capture: {s.turns} turns, {s.skipped} skipped, {s.requests} requests, {s.failures} failed, "
            f"{s.dropped_turns} dropped, {s.bad_answers} bad answers, {s.applied} operations applied"
        )


def _reason(exc: BaseException) -> str:
    """The error type (and HTTP status): an error's text may echo the request, which holds user data."""
    if isinstance(exc, APIStatusError):
        return f"{type(exc).__name__} HTTP {exc.status_code}"
    return type(exc).__name__
