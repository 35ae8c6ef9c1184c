"""The `remember` / `recall` / `forget` tools of the chat agent, bound to one authenticated user.

Same names, arguments and wording as the voice agent's tools, built on the shared
pure helpers in `memory.categorize` and `memory.recall`, so a fact saved by voice
is found by chat and the other way round. The user id is captured when the tools
are built for a request; nothing the model sends can name another user.
"""

from __future__ import annotations

from agents import FunctionTool, function_tool

from api.recall import find_memories
from memory.categorize import categorize
from memory.models import normalize_key
from memory.recall import describe_memories
from stores import UserStore

SOURCE = "chat"


MEMORY_OFF = "Memory is switched off for this user at their request; nothing is remembered or stored."


def memory_tools(
    store: UserStore,
    user_id: str,
    *,
    write: bool = True,
    enabled: bool = True,
    thread_id: str | None = None,
    item_id: str | None = None,
) -> list[FunctionTool]:
    """Fresh tool instances for one request of `user_id`.

    `write=False` (MEMORY_CAPTURE=background/off) gives only `recall`; `enabled=False`
    (the user switched memory off) makes every tool say so and touch nothing. A memory
    saved here names the thread and user message it came from.
    """

    @function_tool
    async def remember(category: str, key: str, value: str) -> str:
        """Save or update one fact about the user for future conversations.

        Args:
            category: One of preference, interest, relationship, personal, work, goal, fact.
            key: A short name for the fact, e.g. "favourite colour" or "sister".
            value: The fact itself, e.g. "blue" or "Maya, lives in Lisbon".
        """
        if not enabled:
            return MEMORY_OFF
        try:
            memory = await store.memories.remember(
                user_id,
                categorize(key, value, category),
                key,
                value,
                source=SOURCE,
                thread_id=thread_id,
                item_id=item_id,
            )
        except ValueError as exc:
            return f"Could not remember that: {exc}"
        return f"Remembered {memory.category} / {memory.key.replace('_', ' ')}: {memory.value}"

    @function_tool
    async def recall(query: str) -> str:
        """Look up what is remembered about the user.

        Args:
            query: What to look for, e.g. "favourite food"; "everything" lists all memories.
        """
        if not enabled:
            return MEMORY_OFF
        return describe_memories(await find_memories(store, user_id, query))

    @function_tool
    async def forget(category: str, key: str) -> str:
        """Delete one remembered fact when the user asks to forget it or it is wrong.

        Args:
            category: The category the fact was saved under.
            key: The short name of the fact, e.g. "favourite colour".
        """
        if not enabled:
            return MEMORY_OFF
        try:
            wanted = normalize_key(key)
        except ValueError as exc:
            return f"Could not forget that: {exc}"
        chosen = categorize(key, "", category)
        target = await store.memories.get(user_id, chosen, wanted)
        candidates = [] if target is not None else [m for m in await store.memories.list(user_id) if m.key == wanted]
        if target is None and len(candidates) == 1:
            target = candidates[0]  # the model guessed the category wrong; the key is unambiguous
        if target is None:
            if candidates:
                categories = ", ".join(sorted(m.category for m in candidates))
                return f"'{key}' is remembered under several categories ({categories}); say which one."
            return f"Nothing was remembered under '{key}'."
        await store.memories.forget(user_id, target.category, target.key, source=SOURCE)
        return f"Forgot {target.category} / {target.key.replace('_', ' ')}."

    return [remember, recall, forget] if write else [recall]
