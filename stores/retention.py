"""Retention: forget memories not updated for N days and delete voice-call transcripts older than N days.

`Sweeper.sweep()` walks the store across users in bounded batches (the backends'
`_stale` / `_old_threads` primitives) and removes what expired through the normal
per-user calls, so erasure, the audit trail (source `retention`) and the change feed
behave as for any other forget or delete. It is safe in several processes at once:
a memory is forgotten only if it is still not updated since the cutoff (checked in the
same write), and deleting a thread is idempotent, so two sweepers racing remove
each thing once. Unset settings mean keep forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from memory.settings import Settings
from stores import codec
from stores.base import UserStore

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 200
VOICE_SOURCE = "voice"  # agent/transcript.py marks voice-call threads with metadata source=voice


@dataclass
class SweepResult:
    """What one sweep removed."""

    memories: int = 0
    threads: int = 0


def is_voice_call(thread_json: str) -> bool:
    """A voice-call transcript thread: metadata `source == "voice"` (set by agent/transcript.py)."""
    try:
        metadata = codec.load_thread(thread_json).metadata
    except ValueError:
        return False
    return isinstance(metadata, dict) and metadata.get("source") == VOICE_SOURCE


class Sweeper:
    """Removes expired data from one store; `clock` is injectable (tests move time forward)."""

    def __init__(
        self,
        store: UserStore,
        *,
        memory_days: int | None,
        transcript_days: int | None,
        batch: int = DEFAULT_BATCH,
        clock: Callable[[], datetime] = codec.utc_now,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.store = store
        self.memory_days = memory_days
        self.transcript_days = transcript_days
        self.batch = batch
        self.clock = clock

    @classmethod
    def from_settings(cls, store: UserStore, settings: Settings, **kwargs: object) -> Sweeper:
        return cls(
            store,
            memory_days=settings.memory_retention_days,
            transcript_days=settings.transcript_retention_days,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def enabled(self) -> bool:
        return self.memory_days is not None or self.transcript_days is not None

    async def sweep(self) -> SweepResult:
        """One pass over the whole store; returns how much it removed."""
        result = SweepResult()
        now = self.clock()
        if self.memory_days is not None:
            result.memories = await self._sweep_memories(now - timedelta(days=self.memory_days))
        if self.transcript_days is not None:
            result.threads = await self._sweep_threads(now - timedelta(days=self.transcript_days))
        if result.memories or result.threads:
            logger.info(
                "retention: forgot %d memories and deleted %d voice-call threads", result.memories, result.threads
            )
        return result

    async def _sweep_memories(self, cutoff: datetime) -> int:
        forgotten = 0
        memories = self.store.memories
        async for batch in memories._stale(cutoff, self.batch):
            async with self.store.erasing_in_bulk():  # one SQLite file rewrite per batch, not per memory
                for user_id, category, key in batch:
                    forgotten += await memories.forget_stale(user_id, category, key, cutoff)
            await asyncio.sleep(0)  # a sweep never hogs the loop between batches
        return forgotten

    async def _sweep_threads(self, cutoff: datetime) -> int:
        deleted = 0
        threads = self.store.threads
        async for batch in threads._old_threads(codec.sort_key(cutoff), self.batch):
            async with self.store.erasing_in_bulk():
                for user_id, thread_id, data in batch:
                    if is_voice_call(data):
                        await threads.delete_thread(thread_id, {"user_id": user_id})  # attachments and bytes too
                        deleted += 1
            await asyncio.sleep(0)
        return deleted

    async def run_forever(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled; a failed sweep is logged and retried next time."""
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be down; the API keeps serving
                logger.warning("retention sweep failed (%s: %s); retrying in %gs", type(exc).__name__, exc, interval)
            await asyncio.sleep(interval)
