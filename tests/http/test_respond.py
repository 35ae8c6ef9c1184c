"""`respond` end to end: ChatKit over HTTP -> openai-agents -> the fake OpenAI server -> the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from memory.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.http.conftest import RunningApp, Tokens, message_text, new_user, serve, sse_events, user_message


def tool_call(name: str, **arguments: Any) -> list[dict[str, Any]]:
    return [{"tool_call": {"name": name, "arguments": json.dumps(arguments)}}]


def system_prompt(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] in ("system", "developer"))


def texts(body: dict[str, Any], role: str) -> list[str]:
    return [message_text(m) for m in body["messages"] if m["role"] == role]


def assistant_text(events: list[dict[str, Any]]) -> list[str]:
    return [
        "".join(part["text"] for part in e["item"]["content"])
        for e in events
        if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"
    ]


async def test_a_tool_call_writes_a_memory_and_the_answer_streams(
    api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    user = new_user()
    token = tokens.mint(user)
    llm.responder.steps += [  # type: ignore[attr-defined]
        tool_call("remember", category="preference", key="favourite colour", value="blue"),
        [{"text": "Got it, your favourite colour is blue."}],
    ]
    response = await api.chatkit(
        token, {"type": "threads.create", "params": {"input": user_message("Remember my favourite colour is blue")}}
    )
    assert response.status_code == 200, response.text
    events = sse_events(response)
    types = [e["type"] for e in events]
    assert types[0] == "thread.created"
    assert "thread.item.updated" in types  # text deltas streamed before the item was done
    assert assistant_text(events) == ["Got it, your favourite colour is blue."]
    assert not [e for e in events if e["type"] == "error"]

    memory = await api.services.store.memories.get(user, "preference", "favourite colour")
    assert memory is not None and memory.value == "blue" and memory.source == "chat"
    # the tool's answer went back to the model
    tool_results = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_results and "blue" in tool_results[0]["content"]
    assert {t["function"]["name"] for t in llm.requests[0]["tools"]} == {"remember", "recall", "forget"}

    # the thread holds the user message and the answer, in order
    thread_id = events[0]["thread"]["id"]
    items = (
        await api.chatkit(token, {"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}})
    ).json()["data"]
    assert [i["type"] for i in items] == ["user_message", "assistant_message"]


async def test_memories_are_in_context_and_each_answer_is_kept(
    api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    alice, bob = new_user(), new_user()
    store = api.services.store
    await store.memories.remember(alice, "preference", "favourite food", "ramen with extra egg")
    await store.memories.remember(alice, "personal", "name", "Alice")
    await store.memories.remember(bob, "preference", "favourite food", "durian pizza")
    token = tokens.mint(alice)

    first = sse_events(
        await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("What food do I like?")}})
    )
    prompt = system_prompt(llm.requests[-1])
    assert "<user_memories>" in prompt and "ramen with extra egg" in prompt and "Alice" in prompt
    assert "durian" not in json.dumps(llm.requests[-1])  # another user's memory never reaches the model
    thread_id = first[0]["thread"]["id"]

    llm.responder.default_text = "Second answer."  # type: ignore[attr-defined]
    second = await api.chatkit(
        token,
        {"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": user_message("And drinks?")}},
    )
    assert assistant_text(sse_events(second)) == ["Second answer."]
    # the model saw the earlier turn as history
    assert texts(llm.requests[-1], "user")[-2:] == ["What food do I like?", "And drinks?"]
    assert texts(llm.requests[-1], "assistant") == ["Hello from the fake model."]

    items = (
        await api.chatkit(token, {"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}})
    ).json()["data"]
    assert [i["type"] for i in items] == ["user_message", "assistant_message", "user_message", "assistant_message"]
    assert len({i["id"] for i in items}) == 4  # answers do not overwrite each other


async def test_recall_and_forget_tools_act_for_the_signed_in_user_only(
    api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    alice, bob = new_user(), new_user()
    store = api.services.store
    await store.memories.remember(alice, "relationship", "sister", "Maya")
    await store.memories.remember(bob, "relationship", "sister", "Zoe")
    seen: list[str] = []

    def answer_with_tool_output(body: dict[str, Any]) -> list[dict[str, Any]]:
        seen.append(body["messages"][-1]["content"])
        return [{"text": "ok"}]

    llm.responder.steps += [  # type: ignore[attr-defined]
        tool_call("recall", query="sister"),
        answer_with_tool_output,
        tool_call("forget", category="family", key="Sister"),
        answer_with_tool_output,
    ]
    token = tokens.mint(alice)
    events = sse_events(
        await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("Who is my sister?")}})
    )
    assert "Maya" in seen[0] and "Zoe" not in seen[0]
    thread_id = events[0]["thread"]["id"]
    await api.chatkit(
        token,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_message("Forget my sister")},
        },
    )
    assert "Forgot" in seen[1]
    assert await store.memories.get(alice, "relationship", "sister") is None
    bobs = await store.memories.get(bob, "relationship", "sister")
    assert bobs is not None and bobs.value == "Zoe"


async def test_without_an_llm_configured_the_user_gets_a_clear_error(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    async with serve(settings_factory(openai_api_key=None, openai_base_url=None)) as api:
        response = await api.chatkit(
            tokens.mint(new_user()), {"type": "threads.create", "params": {"input": user_message("hi")}}
        )
        assert response.status_code == 200
        errors = [e for e in sse_events(response) if e["type"] == "error"]
        assert errors and "OPENAI_API_KEY" in errors[0]["message"]


async def test_a_broken_model_server_ends_the_stream_with_an_error_event(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    async with serve(settings_factory(openai_base_url="http://127.0.0.1:9/v1")) as api:
        response = await api.chatkit(
            tokens.mint(new_user()), {"type": "threads.create", "params": {"input": user_message("hi")}}
        )
        assert response.status_code == 200
        events = sse_events(response)
        assert events[0]["type"] == "thread.created"
        assert events[-1]["type"] == "error" and events[-1]["allow_retry"] is True


async def test_a_turn_sees_the_best_matches_and_the_name_however_many_memories_there_are(
    api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    carol = new_user()
    store = api.services.store
    await store.memories.remember(carol, "personal", "preferred name", "Caz")  # the oldest memory
    await store.memories.remember(carol, "preference", "favourite food", "ramen with extra egg")
    for index in range(300):
        await store.memories.remember(carol, "fact", f"note {index}", f"visited museum number {index}")

    sse_events(
        await api.chatkit(
            tokens.mint(carol), {"type": "threads.create", "params": {"input": user_message("What food do I like?")}}
        )
    )
    prompt = system_prompt(llm.requests[-1])
    block = prompt[prompt.index("<user_memories>") : prompt.index("</user_memories>")]
    assert "Caz" in block and "ramen with extra egg" in block
    assert "museum" not in block  # unrelated memories stay out, however many there are
