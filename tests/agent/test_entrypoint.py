"""The real worker entrypoint under `fake_job_context` with a mock room (no LiveKit server)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from livekit.agents import AgentSession
from livekit.agents.testing import fake_job_context

from agent import worker
from agent.greeting import FIRST_CALL
from memory import identity_to_uuid
from stores import UserStore
from tests.agent.helpers import (
    TEXT_TURNS,
    assistant_replies,
    call,
    eventually,
    fake_call,
    message_text,
    system_texts,
    until,
)
from tests.fakes.mock_room import make_mock_room
from tests.fakes.scripted_llm import ScriptedLLM

IDENTITY = "sam.caller@example.com"


async def one_call(store: UserStore, scripted: ScriptedLLM, user_turns: list[str], job_id: str) -> AgentSession:
    """Greeting, the given user turns, hang up."""
    async with fake_call(store, scripted, IDENTITY, room_name=f"room-{job_id}", job_id=job_id) as session:
        for text in user_turns:
            await session.run(user_input=text)
    return session


async def _threads(store: UserStore, user_id: str) -> list[Any]:
    return (await store.threads.load_threads(100, None, "asc", {"user_id": user_id})).data


async def _texts(store: UserStore, user_id: str, thread_id: str) -> list[tuple[str, str]]:
    page = await store.threads.load_thread_items(thread_id, None, 100, "asc", {"user_id": user_id})
    return [(item.type, message_text(item)) for item in page.data]


def tool_outputs_of(session: AgentSession) -> str:
    return "\n".join(i.output for i in session.history.items if i.type == "function_call_output")


async def test_first_call_then_returning_call(mem_store: UserStore, caplog: pytest.LogCaptureFixture) -> None:
    user = identity_to_uuid(IDENTITY)
    caplog.set_level(logging.INFO, logger="memory_agent")

    first_llm = ScriptedLLM(
        [
            ["Hi, I'm new here too! What's your name?"],
            [call("remember", category="personal", key="name", value="Sam")],
            ["Nice to meet you, Sam."],
        ]
    )
    first = await one_call(mem_store, first_llm, ["My name is Sam"], "job-1")

    assert system_texts(first_llm.requests[0])[-1] == FIRST_CALL
    profile = await mem_store.profiles.get(user)
    assert profile is not None and profile.identity == IDENTITY and profile.email == IDENTITY
    assert [(m.key, m.value) for m in await mem_store.memories.list(user)] == [("name", "Sam")]
    [thread] = await _threads(mem_store, user)
    assert thread.metadata == {"source": "voice", "room": "room-job-1", "job_id": "job-1"}
    assert thread.title.startswith("Voice call ")
    assert await _texts(mem_store, user, thread.id) == [
        ("assistant_message", "Hi, I'm new here too! What's your name?"),
        ("user_message", "My name is Sam"),
        ("assistant_message", "Nice to meet you, Sam."),
    ]
    assert assistant_replies(first)[-1] == "Nice to meet you, Sam."

    second_llm = ScriptedLLM([["Welcome back, Sam!"], [call("recall", query="")], ["You told me your name."]])
    second = await one_call(mem_store, second_llm, ["what do you know about me?"], "job-2")

    greeting = system_texts(second_llm.requests[0])[-1]
    assert "returning" in greeting and "'Sam'" in greeting
    assert "personal / name: Sam" in system_texts(second_llm.requests[0])[-2]  # recalled facts come first
    assert (await mem_store.profiles.get(user)).created_at == profile.created_at  # type: ignore[union-attr]
    assert "personal / name: Sam" in tool_outputs_of(second)
    threads = await _threads(mem_store, user)
    assert len(threads) == 2 and {t.metadata["job_id"] for t in threads} == {"job-1", "job-2"}

    # the UUID is logged at INFO, the raw identity never above DEBUG
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert any(user in message for message in info)
    assert not any(IDENTITY in message for message in info)


async def test_profile_is_created_once_for_concurrent_first_calls(mem_store: UserStore) -> None:
    models = [ScriptedLLM([["Hello!"]]) for _ in range(5)]
    await asyncio.gather(*(one_call(mem_store, m, [], f"job-{n}") for n, m in enumerate(models)))
    greetings = [system_texts(m.requests[0])[-1] for m in models]
    assert greetings.count(FIRST_CALL) == 1  # one call created the profile, the others found it
    user = identity_to_uuid(IDENTITY)
    assert (await mem_store.profiles.get(user)) is not None
    assert len(await _threads(mem_store, user)) == 5


async def test_unusable_identity_is_refused(mem_store: UserStore, caplog: pytest.LogCaptureFixture) -> None:
    with fake_job_context(room=make_mock_room("bad\nidentity")) as ctx:
        ctx.proc.userdata.update(store=mem_store, llm=ScriptedLLM([]))
        assert await worker.run_call(ctx) is None
    assert "unusable participant identity" in caplog.text
    assert "bad\nidentity" not in caplog.text


async def test_transcript_is_flushed_when_the_session_closes(mem_store: UserStore) -> None:
    """Hanging up (session close) stores the transcript even before the job shuts down."""
    scripted = ScriptedLLM([["Hello!"], ["Bye now."]])
    with fake_job_context(room=make_mock_room(IDENTITY), job_id="job-close") as ctx:
        ctx.proc.userdata.update(
            store=mem_store, llm=scripted, session_options={"vad": None, "turn_handling": TEXT_TURNS}
        )
        await worker.entrypoint(ctx)
        session: AgentSession = ctx.primary_session
        await until(lambda: bool(assistant_replies(session)), what="the greeting")
        await session.run(user_input="goodbye")
        await session.aclose()  # no shutdown callbacks run here
        user = identity_to_uuid(IDENTITY)

        async def stored() -> bool:
            threads = await _threads(mem_store, user)
            return bool(threads) and len(await _texts(mem_store, user, threads[0].id)) == 3

        await eventually(stored, what="the transcript after close")
        for callback in list(ctx._shutdown_callbacks):  # and shutdown after close is harmless
            await callback("done")
    [thread] = await _threads(mem_store, user)
    assert await _texts(mem_store, user, thread.id) == [
        ("assistant_message", "Hello!"),
        ("user_message", "goodbye"),
        ("assistant_message", "Bye now."),
    ]


def test_greeting_instructions() -> None:
    from datetime import UTC, datetime

    from agent.greeting import RETURNING_ANONYMOUS, greeting_instructions
    from memory.models import Memory

    now = datetime.now(UTC)
    name = Memory(id="m1", user_id="u", category="personal", key="name", value="Ada", created_at=now, updated_at=now)
    other = name.model_copy(update={"id": "m2", "key": "sister", "value": "Maya"})
    assert greeting_instructions(True, [name]) == FIRST_CALL
    assert "'Ada'" in greeting_instructions(False, [name, other])
    assert greeting_instructions(False, [other]) == RETURNING_ANONYMOUS
