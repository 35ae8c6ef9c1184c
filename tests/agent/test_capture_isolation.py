"""30 concurrent voice sessions with per-user canaries: capture never mixes users.

Every caller has a stored seed memory and says a codeword; both are unique per
user. One fake capture endpoint serves all sessions at once and echoes whatever
codewords a request carries. No capture request, no reply request and no stored
memory may ever hold another user's seed or codeword.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from livekit.agents import AgentSession, llm

from agent import MemoryAgent
from memory import user_session
from stores import UserStore, open_store
from tests.agent.helpers import TEXT_TURNS, everything_sent
from tests.agent.test_capture import background, remember
from tests.fakes.openai_server import FakeOpenAIServer, capture_user_text, operations
from tests.fakes.scripted_llm import ScriptedLLM

SESSIONS = 30
TOKEN_RE = re.compile(r"(?:CANARY|SEED)(\d{2})x[0-9a-f]{6}")


@dataclass
class Caller:
    n: int
    identity: str
    canary: str
    seed: str
    user_id: str = ""
    replies: ScriptedLLM | None = None


def owners(text: str) -> set[int]:
    """The caller numbers whose canary or seed appear in `text`."""
    return {int(n) for n in TOKEN_RE.findall(text)}


def echo_codewords(body: dict[str, Any]) -> str:
    words = re.findall(r"CANARY\d{2}x[0-9a-f]{6}", capture_user_text(body))
    return operations(*[remember("fact", "codeword", word) for word in words])


def reply(chat_ctx: llm.ChatContext, tools: list[Any]) -> list[str]:
    return ["Noted."]


@pytest.fixture(params=["sqlite", "redis", "postgres"])
async def shared_store(request: pytest.FixtureRequest) -> AsyncIterator[UserStore]:
    url = str(request.getfixturevalue(f"{request.param}_store_url"))
    async with await open_store(url) as store:
        yield store


async def test_thirty_concurrent_sessions_never_see_or_store_another_users_canary(shared_store: UserStore) -> None:
    server = FakeOpenAIServer(capture_responder=echo_codewords)
    await server.start()
    callers = [
        Caller(n, f"caller-{n}-{secrets.token_hex(2)}@example.com", f"CANARY{n:02d}x{secrets.token_hex(3)}", "")
        for n in range(SESSIONS)
    ]
    for caller in callers:
        caller.seed = f"SEED{caller.n:02d}x{secrets.token_hex(3)}"

    async def call(caller: Caller) -> None:
        with user_session(caller.identity) as user_id:
            caller.user_id = user_id
            await shared_store.memories.remember(user_id, "fact", "seed", caller.seed)
            agent = MemoryAgent(shared_store, settings=background(server))
            caller.replies = ScriptedLLM([reply] * 4)
            async with AgentSession(llm=caller.replies, vad=None, turn_handling=TEXT_TURNS) as session:
                await session.start(agent)
                await session.run(user_input=f"My codeword is {caller.canary}")
                assert agent.capture is not None
                assert await agent.capture.flush(60)
                await session.run(user_input="What is my codeword?")
            assert await agent.aclose(30) == 0

    try:
        await asyncio.wait_for(asyncio.gather(*(call(c) for c in callers)), 240)
    finally:
        await server.aclose()

    assert len(server.capture_requests) >= SESSIONS
    for body in server.capture_requests:
        assert len(owners(json.dumps(body))) == 1, "a capture request carried more than one user's data"
        seen = owners(json.dumps(body))
        assert {int(n) for n in re.findall(r"CANARY(\d{2})", capture_user_text(body))} == seen
    for caller in callers:
        assert caller.replies is not None
        for request in caller.replies.requests:
            assert owners(everything_sent(request)) <= {caller.n}
        stored = {m.key: m.value for m in await shared_store.memories.list(caller.user_id)}
        assert stored == {"codeword": caller.canary, "seed": caller.seed}
        assert owners(json.dumps(await shared_store.export_user(caller.user_id))) == {caller.n}
    asked = [r for c in callers if c.replies for r in c.replies.requests[1:]]
    assert sum(1 for c in callers if c.replies and c.canary in everything_sent(c.replies.requests[-1])) == SESSIONS
    assert len(asked) == SESSIONS
