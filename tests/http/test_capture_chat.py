"""Chat builds the same memory as voice: `/chatkit` respond captures each turn behind the reply.

Real app under uvicorn on loopback; the reply model and the capture model are the
same fake OpenAI server (capture requests are the JSON-mode ones).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from memory.settings import Settings
from tests.agent.helpers import eventually
from tests.fakes.openai_server import FakeOpenAIServer, capture_data, capture_user_text, operations
from tests.http.conftest import RunningApp, Tokens, new_user, serve, sse_events, user_message
from tests.http.test_respond import assistant_text, system_prompt, tool_call


def remember(category: str, key: str, value: str) -> dict[str, str]:
    return {"op": "remember", "category": category, "key": key, "value": value}


def answer_when(rules: dict[str, str]) -> Callable[[dict[str, Any]], str]:
    def respond(body: dict[str, Any]) -> str:
        said = capture_user_text(body).lower()
        return next((answer for needle, answer in rules.items() if needle in said), operations())

    return respond


@pytest.fixture
async def capturing(settings_factory: Callable[..., Settings]) -> AsyncIterator[RunningApp]:
    async with serve(settings_factory(memory_capture="background", memory_capture_model="capture-model")) as app:
        yield app


async def new_thread(app: RunningApp, token: str, text: str) -> list[dict[str, Any]]:
    response = await app.chatkit(token, {"type": "threads.create", "params": {"input": user_message(text)}})
    assert response.status_code == 200, response.text
    return sse_events(response)


async def say(app: RunningApp, token: str, thread_id: str, text: str) -> list[dict[str, Any]]:
    payload = {"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": user_message(text)}}
    response = await app.chatkit(token, payload)
    assert response.status_code == 200, response.text
    return sse_events(response)


def user_item_id(events: list[dict[str, Any]]) -> str:
    return next(
        e["item"]["id"] for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "user_message"
    )


async def test_a_chat_fact_is_captured_after_the_reply_with_its_provenance(
    capturing: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    user = new_user()
    store = capturing.services.store
    await store.memories.remember(user, "preference", "drink", "oolong tea", source="voice", thread_id="thr_call")
    llm.capture_responder = answer_when({"sister": operations(remember("relationship", "sister", "Maya"))})

    events = await new_thread(capturing, tokens.mint(user), "My sister is called Maya")

    assert assistant_text(events) == ["Hello from the fake model."]
    [reply] = llm.reply_requests  # one model call for the reply, without write tools
    assert {t["function"]["name"] for t in reply["tools"]} == {"recall"}
    assert "remembered automatically" in system_prompt(reply)

    async def stored() -> bool:
        return await store.memories.get(user, "relationship", "sister") is not None

    await eventually(stored, what="the chat fact in the store")
    saved = await store.memories.get(user, "relationship", "sister")
    assert saved is not None and (saved.value, saved.source) == ("Maya", "chat")
    assert saved.thread_id == events[0]["thread"]["id"] and saved.item_id == user_item_id(events)
    [request] = llm.capture_requests
    assert request["model"] == "capture-model"
    assert {"category": "preference", "key": "drink", "value": "oolong tea"} in capture_data(request)[
        "existing_memories"
    ]

    assert await store.memories.forget_from(user, events[0]["thread"]["id"]) == 1
    assert [m.key for m in await store.memories.list(user)] == ["drink"]


async def test_chat_consent_by_patch_and_by_phrase(
    capturing: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    user = new_user()
    token = tokens.mint(user)
    store = capturing.services.store
    await store.memories.remember(user, "preference", "favourite colour", "teal")
    llm.capture_responder = answer_when(
        {"rex": operations(remember("fact", "dog", "Rex")), "luna": operations(remember("fact", "cat", "Luna"))}
    )
    off = await capturing.client.patch("/me", json={"memory_enabled": False}, headers=capturing.auth(token))
    assert off.status_code == 200

    events = await new_thread(capturing, token, "My dog is called Rex. What is my favourite colour?")
    thread_id = events[0]["thread"]["id"]
    await say(capturing, token, thread_id, "My dog Rex is three")
    await capturing.services.chat.captures.flush(5)  # type: ignore[union-attr]

    assert llm.capture_requests == []
    assert await store.memories.get(user, "fact", "dog") is None
    for body in llm.reply_requests:
        assert "Memory is switched off" in system_prompt(body) and "teal" not in system_prompt(body)

    await say(capturing, token, thread_id, "You can remember again")
    profile = await store.profiles.get(user)
    assert profile is not None and profile.memory_enabled is True
    await say(capturing, token, thread_id, "My cat is called Luna")

    async def cat() -> bool:
        return await store.memories.get(user, "fact", "cat") is not None

    await eventually(cat, what="the cat in the store")
    assert [capture_user_text(b) for b in llm.capture_requests] == ["My cat is called Luna"]

    await say(capturing, token, thread_id, "Stop remembering things about me")
    profile = await store.profiles.get(user)
    assert profile is not None and profile.memory_enabled is False
    me = (await capturing.client.get("/me", headers=capturing.auth(token))).json()
    assert me["memory_enabled"] is False


async def test_tools_mode_keeps_the_write_tools_and_captures_nothing(
    settings_factory: Callable[..., Settings], tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    llm.capture_responder = lambda body: operations(remember("fact", "never", "captured"))
    async with serve(settings_factory(memory_capture="tools")) as app:
        user = new_user()
        await new_thread(app, tokens.mint(user), "My sister is called Maya")
        assert app.services.chat.captures is None
    assert {t["function"]["name"] for t in llm.reply_requests[0]["tools"]} == {"remember", "recall", "forget"}
    assert llm.capture_requests == []


async def test_with_memory_off_the_chat_tools_say_so_and_store_nothing(
    settings_factory: Callable[..., Settings], tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    user = new_user()
    async with serve(settings_factory(memory_capture="tools")) as app:
        await app.services.store.memories.remember(user, "preference", "tea", "oolong")
        await app.services.store.profiles.set_memory_enabled(user, False)
        llm.responder.steps += [  # type: ignore[attr-defined]
            tool_call("remember", category="pet", key="dog", value="Rex"),
            tool_call("recall", query="tea"),
            [{"text": "Memory is off, so I did not keep that."}],
        ]
        events = await new_thread(app, tokens.mint(user), "Remember my dog is Rex")
        assert assistant_text(events) == ["Memory is off, so I did not keep that."]
        assert await app.services.store.memories.get(user, "pet", "dog") is None
    outputs = [m["content"] for body in llm.requests for m in body["messages"] if m["role"] == "tool"]
    assert outputs and all("switched off" in o for o in outputs)
    assert not any("oolong" in o for o in outputs)
