"""The real `livekit.plugins.openai.LLM` against an OpenAI-compatible server on 127.0.0.1.

Exercises the plugin's streamed tool-call parsing and checks what actually goes
over HTTP: the tool schemas and the delimited recall block.
"""

from __future__ import annotations

import json
from typing import Any

from livekit.agents import AgentSession, RunResult
from livekit.plugins import openai

from agent import MemoryAgent
from memory import user_session
from memory.recall import BLOCK_START
from stores import UserStore
from tests.agent.helpers import TEXT_TURNS, tool_outputs
from tests.fakes.openai_server import FakeOpenAIServer


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def responder(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages", [])
    last = messages[-1]
    if last["role"] == "tool":
        return [{"text": f"Done: {_text(last.get('content'))}"}]
    said = _text(last.get("content")).lower()
    if said.startswith("remember"):
        arguments = {"category": "preference", "key": "favourite colour", "value": "cobalt blue"}
        return [{"tool_call": {"name": "remember", "arguments": json.dumps(arguments)}}]
    if said.startswith("forget"):
        return [{"tool_call": {"name": "forget", "arguments": json.dumps({"category": "", "key": "favourite colour"})}}]
    known = [_text(m.get("content")) for m in messages if _text(m.get("content")).startswith(BLOCK_START)]
    return [{"text": "You like cobalt blue." if known and "cobalt blue" in known[0] else "I don't know."}]


async def test_real_plugin_tool_calls_and_recall_over_http(mem_store: UserStore) -> None:
    async with FakeOpenAIServer(responder) as server:
        model = openai.LLM(model="fake-model", base_url=server.base_url, api_key="sk-test-not-real")
        with user_session("plugin-user@example.com") as user:
            agent = MemoryAgent(mem_store)
            async with AgentSession(llm=model, vad=None, turn_handling=TEXT_TURNS) as session:
                await session.start(agent)
                remembered: RunResult[object] = await session.run(
                    user_input="remember my favourite colour is cobalt blue"
                )
                asked: RunResult[object] = await session.run(user_input="what colour do I like?")
                forgot: RunResult[object] = await session.run(user_input="forget my favourite colour")
                asked_again: RunResult[object] = await session.run(user_input="what colour do I like?")
            assert await agent.aclose() == 0

    assert tool_outputs(remembered) == ["Remembered (preference) favourite colour: cobalt blue"]
    assert tool_outputs(forgot) == ["Forgot (preference) favourite colour."]
    assert [ev.item.text_content for ev in asked.events if ev.type == "message"] == ["You like cobalt blue."]
    assert [ev.item.text_content for ev in asked_again.events if ev.type == "message"] == ["I don't know."]
    assert await mem_store.memories.list(user) == []

    first = server.requests[0]
    tools = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert set(tools) == {"remember", "recall", "forget"}
    assert set(tools["remember"]["parameters"]["properties"]) == {"category", "key", "value"}
    assert first["stream"] is True
    # the recall block travels as a system message right before the user's question
    question = server.requests[3]
    roles = [m["role"] for m in question["messages"]]
    block_at = next(i for i, m in enumerate(question["messages"]) if _text(m.get("content")).startswith(BLOCK_START))
    assert roles[block_at] == "system" and roles[block_at + 1] == "user"
    assert "preference / favourite colour: cobalt blue" in _text(question["messages"][block_at]["content"])
