"""Small helpers for driving MemoryAgent sessions and the real entrypoint offline."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from chatkit.types import AssistantMessageItem, ThreadItem, UserMessageItem
from livekit.agents import AgentSession, RunResult, TurnHandlingOptions, llm
from livekit.agents.testing import fake_job_context

from stores import UserStore
from tests.fakes.mock_room import make_mock_room
from tests.fakes.scripted_llm import tool_call

TEXT_TURNS: TurnHandlingOptions = {"turn_detection": None}


def call(name: str, **arguments: Any) -> llm.FunctionToolCall:
    """A scripted tool call with JSON arguments."""
    return tool_call(name, json.dumps(arguments))


def messages(chat_ctx: llm.ChatContext) -> list[tuple[str, str]]:
    """(role, text) of every message item in a recorded LLM request."""
    return [(item.role, item.text_content or "") for item in chat_ctx.items if item.type == "message"]


def system_texts(chat_ctx: llm.ChatContext) -> list[str]:
    return [text for role, text in messages(chat_ctx) if role == "system"]


def tool_outputs(result: RunResult[object]) -> list[str]:
    """The outputs of every function call in a RunResult."""
    return [ev.item.output for ev in result.events if ev.type == "function_call_output"]


def message_text(item: ThreadItem) -> str:
    """The text of a stored transcript message (the voice path stores one text part per message)."""
    assert isinstance(item, UserMessageItem | AssistantMessageItem), f"expected a message item, got {item.type}"
    return item.content[0].text


def assistant_replies(session: AgentSession) -> list[str]:
    return [i.text_content or "" for i in session.history.items if i.type == "message" and i.role == "assistant"]


def everything_sent(chat_ctx: llm.ChatContext) -> str:
    """All text in an LLM request, tool calls and outputs included."""
    parts: list[str] = []
    for item in chat_ctx.items:
        if item.type == "message":
            parts.append(item.text_content or "")
        elif item.type == "function_call":
            parts.append(item.arguments)
        elif item.type == "function_call_output":
            parts.append(item.output)
    return "\n".join(parts)


async def until(predicate: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    """Poll a cheap synchronous `predicate` until it is true; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    for _ in itertools.count():
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0, what: str = "condition") -> None:
    """Like `until` for an async check (e.g. a store read)."""
    deadline = time.monotonic() + within
    for _ in itertools.count():
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def fake_call(
    store: UserStore,
    scripted: llm.LLM,
    identity: str,
    *,
    room_name: str = "test-room",
    job_id: str = "job-1",
    session_options: dict[str, Any] | None = None,
) -> AsyncIterator[AgentSession]:
    """One call through the real worker entrypoint; yields the session once the greeting is out.

    On exit the caller hangs up: the session closes and the job's shutdown callbacks
    run (fake_job_context does not run them by itself).
    """
    from agent import worker

    with fake_job_context(room=make_mock_room(identity, room_name), job_id=job_id) as ctx:
        options = session_options or {"vad": None, "turn_handling": TEXT_TURNS}
        ctx.proc.userdata.update(store=store, llm=scripted, session_options=options)
        await asyncio.wait_for(worker.entrypoint(ctx), 30)
        session: AgentSession = ctx.primary_session
        try:
            await until(lambda: bool(assistant_replies(session)), what="the greeting")
            yield session
        finally:
            await session.aclose()
            for callback in list(ctx._shutdown_callbacks):
                await callback("call over")
