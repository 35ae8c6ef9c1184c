"""100 concurrent calls in one event loop, each with a canary memory: nothing crosses between users."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
from livekit.agents import RunResult

from memory import identity_to_uuid
from stores import UserStore, open_store
from tests.agent.helpers import call, everything_sent, fake_call
from tests.fakes.scripted_llm import ScriptedLLM

SESSIONS = 100
CANARY_RE = re.compile(r"CANARY-\d+-[0-9a-f]{12}")


async def one_call(store: UserStore, n: int, canary: str) -> dict[str, Any]:
    identity = f"caller-{n}@example.com"
    scripted = ScriptedLLM(
        [
            ["Hello!"],  # greeting
            [call("remember", category="fact", key="canary", value=canary)],
            ["Stored."],
            [call("recall", query="everything")],
            ["Here you go."],
            ["Sure."],  # a plain turn: the recall block must carry only this user's canary
        ]
    )
    results: list[RunResult[object]] = []
    async with fake_call(store, scripted, identity, room_name=f"room-{n}", job_id=f"job-{n}") as session:
        for text in ["remember my canary", "what do you know about me?", "tell me about my canary"]:
            results.append(await session.run(user_input=text))
            await asyncio.sleep(0)  # interleave with the other calls
    outputs = [ev.item.output for r in results for ev in r.events if ev.type == "function_call_output"]
    return {"identity": identity, "outputs": outputs, "llm_text": [everything_sent(r) for r in scripted.requests]}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_no_canary_crosses_users(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{backend}_store_url")
    canaries = [f"CANARY-{n}-{uuid.uuid4().hex[:12]}" for n in range(SESSIONS)]
    async with await open_store(url) as store:
        calls = await asyncio.gather(*(one_call(store, n, canaries[n]) for n in range(SESSIONS)))

        for n, result in enumerate(calls):
            own = canaries[n]
            # tool results: own canary only
            seen_in_tools = set(CANARY_RE.findall("\n".join(result["outputs"])))
            assert seen_in_tools == {own}, f"call {n} tool results saw {seen_in_tools - {own}}"
            # everything sent to the LLM: own canary only, and it was actually recalled on the last turn
            seen_by_llm = set(CANARY_RE.findall("\n".join(result["llm_text"])))
            assert seen_by_llm == {own}, f"call {n} LLM context saw {seen_by_llm - {own}}"
            assert own in result["llm_text"][-1]
            # store rows of this user: own canary only, in memories and in the transcript
            user_id = identity_to_uuid(result["identity"])
            exported = json.dumps(await store.export_user(user_id))
            assert set(CANARY_RE.findall(exported)) == {own}
            assert [m.value for m in await store.memories.list(user_id)] == [own]
            assert len(exported) > 0 and len((await store.export_user(user_id))["threads"]) == 1
