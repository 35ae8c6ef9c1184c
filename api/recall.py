"""The memories a chat turn or a `recall` sees, read through the store's search index.

A turn used to read every memory of the user and rank them in Python; with
thousands of memories that cost more than the answer. Now a turn costs two indexed
searches, whatever the user has stored: the best matches for what was said, plus the
pinned memories. Pinned means the user's name (keys `name`, `preferred_name`,
`first_name`, `nickname`, `full_name`, see memory.recall.PINNED_KEYS): the assistant
should know whom it talks to on every turn, whatever was said. They are found by the
key words `name` / `nickname` through the same index. Only an explicit "what do you
know about me?" still lists everything (newest first, at most 50 shown).
"""

from __future__ import annotations

from memory import recall
from memory.models import Memory
from stores import UserStore
from stores.ids import MAX_PAGE_LIMIT

PINNED_QUERY = "name nickname"  # every pinned key holds one of these words


async def pinned(store: UserStore, user_id: str) -> list[Memory]:
    """The user's name memories, newest first."""
    return recall.pinned_memories(await store.memories.search(user_id, PINNED_QUERY, limit=MAX_PAGE_LIMIT))


async def memories_for_turn(store: UserStore, user_id: str, user_text: str | None, limit: int = 5) -> list[Memory]:
    """What `memory.recall.memories_for_turn` picks from all memories, read through the index."""
    if user_text is not None and user_text.strip() and recall.wants_everything(user_text):
        return recall.memories_for_turn(await store.memories.list(user_id), user_text, limit)
    chosen = await store.memories.search(user_id, user_text or "", limit) if user_text else []
    return [m for m in await pinned(store, user_id) if m not in chosen] + chosen


async def find_memories(store: UserStore, user_id: str, query: str | None, limit: int = 5) -> list[Memory]:
    """What `memory.recall.find_memories` returns over all memories: everything, or the indexed best matches."""
    if recall.wants_everything(query):
        return recall.newest_first(await store.memories.list(user_id))
    return await store.memories.search(user_id, query or "", limit)
