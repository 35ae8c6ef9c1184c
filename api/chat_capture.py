"""Background memory capture for ChatKit threads: the same capture as voice, one worker per thread.

`respond` hands each completed user turn over after the reply has streamed; the
capture request runs behind it (at most one in flight per thread, later turns
coalesced) and its operations are written straight to the store with provenance
(`source="chat"`, the thread id, the user message's item id).
"""

from __future__ import annotations

import asyncio
import logging

from capture import CaptureClient, CaptureTurn, TurnCapture
from memory.capture import Operation
from memory.models import Memory
from stores import UserStore

logger = logging.getLogger("memory_agent.api.capture")

SOURCE = "chat"


class ChatCaptures:
    """One `TurnCapture` per (user, thread) while it has work; idle ones are let go."""

    def __init__(self, store: UserStore, client: CaptureClient) -> None:
        self.store = store
        self.client = client
        self._captures: dict[tuple[str, str], TurnCapture] = {}
        self.requests = 0  # capture requests sent by captures already let go (for tests and logs)

    def add(self, user_id: str, thread_id: str, turn: CaptureTurn) -> bool:
        """Offer a completed user turn of `user_id` in `thread_id`; returns at once."""
        self._let_go_idle()
        capture = self._captures.get((user_id, thread_id))
        if capture is None:
            capture = TurnCapture(
                self.client,
                user_id,
                memories=lambda: self._memories(user_id),
                apply=lambda operations, turn: self._apply(user_id, thread_id, operations, turn),
                enabled=lambda: self._enabled(user_id),
                name=f"chat:{thread_id}",
            )
            self._captures[(user_id, thread_id)] = capture
        return capture.add(turn)

    def _let_go_idle(self) -> None:
        for key, capture in list(self._captures.items()):
            if not capture.busy:
                self.requests += capture.stats.requests
                del self._captures[key]

    async def _memories(self, user_id: str) -> list[Memory]:
        return await self.store.memories.list(user_id)

    async def _enabled(self, user_id: str) -> bool:
        profile = await self.store.profiles.get(user_id)
        return profile.memory_enabled if profile else self.store.profiles.default_memory_enabled

    async def _apply(self, user_id: str, thread_id: str, operations: list[Operation], turn: CaptureTurn) -> None:
        for op in operations:
            if op.value is not None:
                await self.store.memories.remember(
                    user_id, op.category, op.key, op.value, source=SOURCE, thread_id=thread_id, item_id=turn.item_id
                )
                continue
            if await self.store.memories.forget(user_id, op.category, op.key, source=SOURCE):
                continue
            # the model named the wrong category: forget by key when exactly one memory has it
            same_key = [m for m in await self.store.memories.list(user_id) if m.key == op.key]
            if len(same_key) == 1:
                await self.store.memories.forget(user_id, same_key[0].category, op.key, source=SOURCE)

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Wait until every turn offered so far is captured; False if `timeout` passed first."""
        results = await asyncio.gather(*(c.flush(timeout) for c in list(self._captures.values())))
        return all(results)

    async def aclose(self, timeout: float | None = None) -> int:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Capture what is pending within `timeout`, then close the client; returns turns dropped."""
        captures = list(self._captures.values())
        lost = sum(await asyncio.gather(*(c.aclose(timeout) for c in captures)))
        self._captures.clear()
        await self.client.aclose()
        if lost:
            logger.warning("chat memory capture: %d turn(s) not captured before shutdown", lost)
        return lost
