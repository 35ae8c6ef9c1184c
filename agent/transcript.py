"""The voice call transcript, saved as one ChatKit thread of the caller, written behind the reply.

The same user later sees the call in their ChatKit chat: a thread titled
"Voice call <local date time>" with metadata `source=voice`, the room and the job
id, holding each final user / assistant message in order.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from chatkit.types import (
    ActiveStatus,
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)

from agent.writebehind import WriteBehind
from stores import UserStore
from stores.ids import new_id, validate_object_id, validate_user_id

logger = logging.getLogger("memory_agent.transcript")

Role = Literal["user", "assistant"]
MAX_MESSAGE_CHARS = 20_000  # a runaway message is cut rather than rejected by the store


def voice_call_title(started: datetime) -> str:
    """`Voice call 2025-11-22 14:05` in the worker's local time."""
    return f"Voice call {started.strftime('%Y-%m-%d %H:%M')}"


class VoiceTranscript:
    """Collects one call's messages and stores them as a ChatKit thread without blocking the caller.

    `add` is synchronous and returns at once (safe from LiveKit's sync event
    handlers); the thread is created with the first message, so a call where nothing
    was said leaves no empty thread. `aclose` stores everything that was added.
    """

    def __init__(
        self,
        store: UserStore,
        user_id: str,
        room: str,
        job_id: str,
        *,
        started: datetime | None = None,
        writer: WriteBehind | None = None,
    ) -> None:
        self.store = store
        self.user_id = validate_user_id(user_id)
        self.context = {"user_id": self.user_id}
        self.started = started or datetime.now()
        self.thread = ThreadMetadata(
            id=new_id("thr"),
            title=voice_call_title(self.started),
            created_at=self.started,
            status=ActiveStatus(),
            metadata={"source": "voice", "room": room, "job_id": job_id},
        )
        self._writer = writer or WriteBehind(f"transcript {self.thread.id}")
        self._thread_queued = False
        self.messages_added = 0
        self.stopped = False  # the user erased their data: nothing more is stored

    @property
    def thread_id(self) -> str:
        return self.thread.id

    @property
    def pending(self) -> int:
        """Messages (and the thread itself) accepted but not stored yet."""
        return self._writer.pending

    def add(self, role: Role, text: str, *, item_id: str | None = None) -> str | None:
        """Queue one final message; returns its item id, or None for an empty message (or a stopped transcript).

        `item_id` (the session's id of the message, when it is a valid store id) is kept, so a
        memory captured from this turn names the same item in the stored thread.
        """
        text = (text or "").strip()
        if not text or self.stopped:
            return None
        if role not in ("user", "assistant"):
            raise ValueError(f"transcript role must be 'user' or 'assistant', got {role!r}")
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[: MAX_MESSAGE_CHARS - 1] + "…"
        if not self._thread_queued:
            self._thread_queued = True
            thread = self.thread
            self._writer.submit(f"thread {thread.id}", lambda: self.store.threads.save_thread(thread, self.context))
        item = self._item(role, text, _usable_id(item_id))
        self._writer.submit(f"{role} message {item.id}", lambda: self._store_item(item))
        self.messages_added += 1
        return item.id

    async def _store_item(self, item: ThreadItem) -> None:
        """Upsert the item (same id on every retry, so stored exactly once).

        If the thread is gone, the user deleted it (or erased all their data) during
        the call: `NotFoundError` makes the write-behind drop the message instead of
        bringing the thread back against their wish.
        """
        await self.store.threads.add_thread_item(self.thread.id, item, self.context)

    def _item(self, role: Role, text: str, item_id: str | None) -> ThreadItem:
        now = datetime.now()
        item_id = item_id or new_id("msg")
        if role == "user":
            return UserMessageItem(
                id=item_id,
                thread_id=self.thread.id,
                created_at=now,
                content=[UserMessageTextContent(text=text)],
                attachments=[],
                inference_options=InferenceOptions(),
            )
        return AssistantMessageItem(
            id=item_id,
            thread_id=self.thread.id,
            created_at=now,
            content=[AssistantMessageContent(text=text, annotations=[])],
        )

    async def discard(self, timeout: float | None = None) -> int:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Store nothing more (the user erased their data): drop what is queued, wait for a write in flight.

        Returns how many queued writes were dropped.
        """
        self.stopped = True
        dropped = self._writer.discard()
        await self._writer.flush(timeout)
        return dropped

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Wait until everything added so far is stored (False if `timeout` passed first)."""
        return await self._writer.flush(timeout)

    async def aclose(self, timeout: float | None = None) -> int:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Store everything still queued and stop; returns how many writes were lost (0 normally)."""
        lost = await self._writer.aclose(timeout)
        if self.messages_added:
            logger.info(
                "voice transcript for user %s: %d messages in thread %s",
                self.user_id,
                self.messages_added,
                self.thread.id,
            )
        return lost


def _usable_id(item_id: str | None) -> str | None:
    """`item_id` if the store accepts it as an item id, else None (a fresh id is made)."""
    if not item_id:
        return None
    try:
        return validate_object_id(item_id, "item id")
    except ValueError:
        return None
