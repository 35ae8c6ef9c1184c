"""The spoken path (scripted STT, real turn handling): recall injection, preemptive generation, time budget."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from livekit.agents import AgentSession, llm

from agent import MemoryAgent
from agent.cache import SessionMemories
from memory import identity_to_uuid, user_session
from memory.recall import BLOCK_START
from stores import UserStore, open_store
from tests.agent.helpers import assistant_replies, system_texts, until
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fakes.voice_harness import ScriptedSTT, SilentAudioInput
from tests.fixtures.redis_servers import RedisServer

CALLER = "voice-caller@example.com"
ENDPOINTING_DELAY = 1.0  # the turn is only committed this long after speech ends


@asynccontextmanager
async def voice_session(agent: MemoryAgent, scripted: ScriptedLLM, stt: ScriptedSTT) -> AsyncIterator[AgentSession]:
    session: AgentSession[None] = AgentSession(
        llm=scripted,
        stt=stt,
        vad=None,
        turn_handling={
            "turn_detection": "stt",
            "endpointing": {"min_delay": ENDPOINTING_DELAY, "max_delay": ENDPOINTING_DELAY + 1.0},
            "preemptive_generation": {"enabled": True},
        },
    )
    session.input.audio = SilentAudioInput()
    await session.start(agent)
    await asyncio.sleep(0.1)  # let the STT stream open
    try:
        yield session
    finally:
        await session.aclose()


async def wait_for_replies(session: AgentSession, count: int) -> None:
    await until(lambda: len(assistant_replies(session)) >= count, what=f"reply #{count}")
    await until(lambda: session.agent_state != "speaking", what="the agent to finish speaking")


def recall_block(request: llm.ChatContext) -> str | None:
    blocks = [text for text in system_texts(request) if text.startswith(BLOCK_START)]
    assert len(blocks) <= 1
    return blocks[0] if blocks else None


async def test_spoken_turns_get_memories_with_one_llm_call_per_turn(mem_store: UserStore) -> None:
    user = identity_to_uuid(CALLER)
    await mem_store.memories.remember(user, "preference", "favourite colour", "teal")
    await mem_store.memories.remember(user, "relationship", "sister", "Maya")
    scripted = ScriptedLLM([["Your favourite colour is teal."], ["Your sister is Maya."]])
    stt = ScriptedSTT()
    with user_session(CALLER):  # bound before session.start(): the voice path inherits it
        agent = MemoryAgent(mem_store)
        async with voice_session(agent, scripted, stt) as session:
            said_at = []
            for count, utterance in enumerate(["what is my favourite colour", "who is my sister"], start=1):
                said_at.append(time.perf_counter())
                stt.say(utterance, preflight=True)
                await wait_for_replies(session, count)
        await agent.aclose()

    assert assistant_replies(session) == ["Your favourite colour is teal.", "Your sister is Maya."]
    # preemptive generation kept: exactly one LLM request per spoken turn ...
    assert len(scripted.requests) == 2
    # ... issued before the end-of-turn delay had passed (i.e. the preemptive request was used)
    for sent, said in zip(scripted.request_times, said_at, strict=True):
        assert sent - said < ENDPOINTING_DELAY * 0.8
    first, second = (recall_block(r) for r in scripted.requests)
    assert first is not None and "favourite colour: teal" in first
    assert second is not None and "sister: Maya" in second
    assert agent.recall_stats.late == 0


async def test_a_stalled_store_does_not_delay_the_reply_past_the_budget(fresh_redis_server: RedisServer) -> None:
    user = identity_to_uuid(CALLER)
    store = await open_store(fresh_redis_server.url)
    await store.memories.remember(user, "preference", "favourite colour", "teal")
    assert fresh_redis_server.process is not None
    scripted = ScriptedLLM([["Sorry, I can't recall right now."], ["It's teal."]])
    stt = ScriptedSTT()
    fresh_redis_server.process.send_signal(signal.SIGSTOP)  # the store stops answering
    try:
        with user_session(CALLER):
            memories = SessionMemories(store, user)
            agent = MemoryAgent(store, memories=memories)
            async with voice_session(agent, scripted, stt) as session:
                memories.start_loading()
                stt.say("what is my favourite colour", preflight=True)
                await wait_for_replies(session, 1)
                budget = agent.recall_budget_s
                assert agent.recall_stats.late >= 1
                assert recall_block(scripted.requests[0]) is None  # went on without memories
                assert max(agent.recall_stats.overhead_s) < budget + 0.04

                fresh_redis_server.process.send_signal(signal.SIGCONT)  # the store recovers
                assert await memories.wait_loaded(10.0)
                stt.say("so what is my favourite colour", preflight=True)
                await wait_for_replies(session, 2)
                block = recall_block(scripted.requests[-1])
                assert block is not None and "favourite colour: teal" in block
            await agent.aclose(5)
    finally:
        if fresh_redis_server.process is not None:
            fresh_redis_server.process.send_signal(signal.SIGCONT)
        await store.aclose()
