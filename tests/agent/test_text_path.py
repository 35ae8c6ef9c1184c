"""MemoryAgent on the text path (session.run) with a scripted LLM: each tool works on the bound user only."""

from __future__ import annotations

import pytest
from livekit.agents import AgentSession, RunResult

from agent import MemoryAgent
from memory import UnboundUserError, identity_to_uuid, user_session
from memory.recall import BLOCK_START
from memory.settings import get_settings
from stores import UserStore
from tests.agent.helpers import TEXT_TURNS, call, eventually, messages, system_texts, tool_outputs
from tests.fakes.scripted_llm import ScriptedLLM

ALICE = "alice@example.com"
BOB = "bob@example.com"


async def test_remember_writes_the_bound_users_store_and_categorises(mem_store: UserStore) -> None:
    scripted = ScriptedLLM(
        [
            [call("remember", category="", key="hobby", value="I love reading books")],
            ["Got it."],
            [call("remember", category="Preferences", key="Favourite Colour", value="blue")],
            ["Noted."],
        ]
    )
    with user_session(ALICE) as alice:
        agent = MemoryAgent(mem_store)
        async with AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS) as session:
            await session.start(agent)
            first: RunResult[object] = await session.run(user_input="I love reading books")
            second: RunResult[object] = await session.run(user_input="my favourite colour is blue")

            assert tool_outputs(first) == ["Remembered (interest) hobby: I love reading books"]
            assert tool_outputs(second) == ["Remembered (preference) favourite colour: blue"]

            async def stored() -> bool:
                return len(await mem_store.memories.list(alice)) == 2

            # written behind the reply, without waiting for the session to end
            await eventually(stored, what="both memories in the store")
        await agent.aclose()

    rows = {(m.category, m.key): (m.value, m.source) for m in await mem_store.memories.list(alice)}
    assert rows == {
        ("interest", "hobby"): ("I love reading books", "voice"),
        ("preference", "favourite_colour"): ("blue", "voice"),
    }
    assert await mem_store.memories.list(identity_to_uuid(BOB)) == []


async def test_recall_lists_everything_or_ranks(mem_store: UserStore) -> None:
    alice = identity_to_uuid(ALICE)
    await mem_store.memories.remember(alice, "relationship", "sister", "Maya")
    await mem_store.memories.remember(alice, "preference", "favourite colour", "green")
    await mem_store.memories.remember(identity_to_uuid(BOB), "preference", "favourite colour", "BOB-ONLY-RED")
    scripted = ScriptedLLM(
        [
            [call("recall", query="")],
            ["Here is what I know."],
            [call("recall", query="what's my sister called")],
            ["Your sister is Maya."],
            [call("recall", query="pizza topping")],
            ["I don't know that yet."],
        ]
    )
    with user_session(ALICE):
        agent = MemoryAgent(mem_store)
        async with AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS) as session:
            await session.start(agent)
            everything = tool_outputs(await session.run(user_input="what do you know about me?"))[0]
            sister = tool_outputs(await session.run(user_input="what's my sister called?"))[0]
            nothing = tool_outputs(await session.run(user_input="what pizza do I like?"))[0]
        await agent.aclose()

    assert "relationship / sister: Maya" in everything and "preference / favourite colour: green" in everything
    assert "BOB-ONLY-RED" not in everything
    assert "sister: Maya" in sister and "green" not in sister
    assert nothing.startswith("Nothing is remembered")


async def test_forget_removes_from_cache_and_store(mem_store: UserStore) -> None:
    alice = identity_to_uuid(ALICE)
    await mem_store.memories.remember(alice, "preference", "favourite colour", "green")
    await mem_store.memories.remember(alice, "relationship", "sister", "Maya")
    scripted = ScriptedLLM(
        [
            [call("forget", category="wrong-category", key="Favourite Colour")],
            ["Forgotten."],
            [call("forget", category="fact", key="shoe size")],
            ["Nothing to forget."],
            [call("recall", query="everything")],
            ["ok"],
        ]
    )
    with user_session(ALICE):
        agent = MemoryAgent(mem_store)
        async with AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS) as session:
            await session.start(agent)
            forgot = tool_outputs(await session.run(user_input="forget my favourite colour"))
            missing = tool_outputs(await session.run(user_input="forget my shoe size"))
            left = tool_outputs(await session.run(user_input="what do you know?"))[0]
        assert await agent.aclose() == 0

    assert forgot == ["Forgot (preference) favourite colour."]
    assert "Nothing was remembered" in missing[0]
    assert "favourite colour" not in left and "sister: Maya" in left
    assert [m.key for m in await mem_store.memories.list(alice)] == ["sister"]


async def test_memories_are_injected_once_before_the_user_message(mem_store: UserStore) -> None:
    alice = identity_to_uuid(ALICE)
    await mem_store.memories.remember(alice, "preference", "favourite colour", "teal")
    await mem_store.memories.remember(alice, "personal", "name", "Alice")
    scripted = ScriptedLLM([[call("recall", query="colour")], ["Teal!"]])
    with user_session(ALICE):
        agent = MemoryAgent(mem_store)
        async with AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS) as session:
            await session.start(agent)
            await session.run(user_input="which colour do I like?")
        await agent.aclose()

    assert len(scripted.requests) == 2  # the tool step re-runs llm_node
    for request in scripted.requests:
        blocks = [text for text in system_texts(request) if text.startswith(BLOCK_START)]
        assert len(blocks) == 1, "recall block must be injected exactly once per LLM call"
        assert "favourite colour: teal" in blocks[0] and "name: Alice" in blocks[0]
        roles = [role for role, _ in messages(request)]
        block_at = next(i for i, (_, text) in enumerate(messages(request)) if text.startswith(BLOCK_START))
        assert roles[block_at + 1] == "user"
    # the injected block is context for the call, not conversation history
    assert not any(BLOCK_START in (item.text_content or "") for item in session.history.items if item.type == "message")


async def test_invalid_tool_input_is_reported_to_the_model_and_not_stored(mem_store: UserStore) -> None:
    scripted = ScriptedLLM([[call("remember", category="fact", key="empty", value="   ")], ["Sorry."]])
    with user_session(ALICE) as alice:
        agent = MemoryAgent(mem_store)
        async with AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS) as session:
            await session.start(agent)
            result: RunResult[object] = await session.run(user_input="remember nothing")
        await agent.aclose()
    outputs = [ev.item for ev in result.events if ev.type == "function_call_output"]
    assert outputs[0].is_error and "value is empty" in outputs[0].output
    assert await mem_store.memories.list(alice) == []


def test_agent_needs_a_bound_user(mem_store: UserStore) -> None:
    import contextvars

    with pytest.raises(UnboundUserError):
        contextvars.Context().run(MemoryAgent, mem_store)


async def test_a_big_memory_is_ranked_within_the_budget_or_skipped(
    mem_store: UserStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memory.settings import get_settings

    alice = identity_to_uuid(ALICE)
    for n in range(1000):
        await mem_store.memories.remember(alice, "fact", f"note {n}", f"ordinary detail number {n}")
    await mem_store.memories.remember(alice, "preference", "favourite colour", "vermilion")

    async def ask(budget_ms: str) -> tuple[MemoryAgent, ScriptedLLM]:
        monkeypatch.setenv("RECALL_BUDGET_MS", budget_ms)
        get_settings.cache_clear()
        scripted = ScriptedLLM([["Sure."]])
        with user_session(ALICE):
            agent = MemoryAgent(mem_store)
            assert await agent.memories.wait_loaded(10)
            async with AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS) as session:
                await session.start(agent)
                await session.run(user_input="what is my favourite colour?")
            await agent.aclose()
        return agent, scripted

    agent, scripted = await ask("5000")
    [block] = [t for t in system_texts(scripted.requests[0]) if t.startswith(BLOCK_START)]
    assert "favourite colour: vermilion" in block and agent.recall_stats.late == 0

    agent, scripted = await ask("0.001")  # no ranking of 1,001 memories fits in a microsecond
    assert not [t for t in system_texts(scripted.requests[0]) if t.startswith(BLOCK_START)]
    assert agent.recall_stats.late == 1
    assert max(agent.recall_stats.overhead_s) < 0.05  # went on at once instead of waiting for the ranking


async def test_a_call_holds_at_most_the_cache_limit_and_recall_still_finds_older_memories(
    mem_store: UserStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORY_CACHE_LIMIT", "10")
    get_settings.cache_clear()
    alice = identity_to_uuid(ALICE)
    await mem_store.memories.remember(alice, "personal", "name", "Alice")  # the oldest two
    await mem_store.memories.remember(alice, "relationship", "sister", "Maya")
    for index in range(30):
        await mem_store.memories.remember(alice, "fact", f"trip {index}", f"went hiking on trail {index}")
    scripted = ScriptedLLM([[call("recall", query="my sister")], ["Your sister is Maya."]])
    with user_session(ALICE):
        agent = MemoryAgent(mem_store)
        async with AgentSession(llm=scripted, vad=None, turn_handling=TEXT_TURNS) as session:
            await session.start(agent)
            sister = tool_outputs(await session.run(user_input="who is my sister?"))[0]
            held = agent.memories.snapshot()
        await agent.aclose()

    assert len(held) == 10 and "name" in {m.key for m in held}  # the name stays, the oldest rest does not
    assert "sister" not in {m.key for m in held}
    assert "sister: Maya" in sister  # found in the store by the recall tool
    assert BLOCK_START in "\n".join(system_texts(scripted.requests[0])) and "Alice" in "\n".join(
        system_texts(scripted.requests[0])
    )
