"""`MemoryAgent` used on its own (no worker entrypoint, no `aclose()`) stores its memories when its session closes."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import AgentSession

from agent.memory_agent import MemoryAgent
from memory import user_session
from memory.models import Memory
from stores import UserStore, open_store
from tests.agent.helpers import TEXT_TURNS, call
from tests.fakes.scripted_llm import ScriptedLLM

SESSIONS = 30


async def remember_then_close(store: UserStore, n: int) -> Memory | None:
    """One session that remembers the caller's name and is closed; what the store holds right after."""
    with user_session(f"direct.caller.{n}@example.com") as user:
        scripted = ScriptedLLM([[call("remember", category="personal", key="name", value=f"Person {n}")], ["Hi!"]])
        session: AgentSession = AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS)
        await session.start(MemoryAgent(store))
        await session.run(user_input=f"My name is Person {n}")
        await session.aclose()
        return await store.memories.get(user, "personal", "name")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_concurrent_sessions_find_their_memory_stored_right_after_close(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_store_url")
    async with await open_store(url) as store:
        found = await asyncio.gather(*(remember_then_close(store, n) for n in range(SESSIONS)))
    assert [m.value if m else None for m in found] == [f"Person {n}" for n in range(SESSIONS)]
