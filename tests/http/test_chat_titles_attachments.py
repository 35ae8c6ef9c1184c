"""ChatKit parity (issue 14, items 14-15): threads get a title after the first exchange, and the model
sees attached images and small text files, not just their names."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.fakes.openai_server import FakeOpenAIServer
from tests.http.conftest import RunningApp, Tokens, new_user, sse_events, user_message
from tests.http.test_attachments_local import PNG, create, upload


def _user_parts(llm: FakeOpenAIServer) -> list[Any]:
    """Every content part of every user message of the last model request."""
    parts: list[Any] = []
    for message in llm.requests[-1]["messages"]:
        if message.get("role") == "user":
            content = message["content"]
            parts.extend(content if isinstance(content, list) else [{"type": "text", "text": content}])
    return parts


async def _attach(api: RunningApp, token: str, name: str, mime: str, data: bytes, *, send: bool = True) -> str:
    created = await create(api, token, name, len(data), mime)
    assert created.status_code == 200, created.text
    attachment = created.json()
    if send:
        assert (await upload(api, token, attachment, data)).status_code == 200
    return str(attachment["id"])


async def test_a_new_thread_is_titled_after_its_first_exchange(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    text = "Plan my trip to Lisbon next spring with friends and family please"
    events = sse_events(await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message(text)}}))
    assert not [e for e in events if e["type"] == "error"], events
    updated = [e["thread"]["title"] for e in events if e["type"] == "thread.updated"]
    assert updated == ["Plan my trip to Lisbon next spring with…"]
    thread_id = events[0]["thread"]["id"]
    listed = (await api.chatkit(token, {"type": "threads.list", "params": {}})).json()
    assert [t["title"] for t in listed["data"]] == ["Plan my trip to Lisbon next spring with…"]

    # later turns keep the title
    more = sse_events(
        await api.chatkit(
            token,
            {"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": user_message("ok")}},
        )
    )
    assert not [e for e in more if e["type"] == "thread.updated"]
    stored = await api.services.store.threads.load_thread(thread_id, {"user_id": user})
    assert stored.title == "Plan my trip to Lisbon next spring with…"

    short = sse_events(await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("Hi")}}))
    assert [e["thread"]["title"] for e in short if e["type"] == "thread.updated"] == ["Hi"]


async def test_the_model_sees_images_and_small_text_files(
    api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    token = tokens.mint(new_user())
    image = await _attach(api, token, "cat.png", "image/png", PNG)
    notes = await _attach(api, token, "notes.txt", "text/plain", b"shopping: figs, bread\nline two")
    big = await _attach(api, token, "big.txt", "text/plain", b"A" * 40_000 + b"TAIL-NOT-SHOWN")
    pending = await _attach(api, token, "later.png", "image/png", PNG, send=False)
    message = user_message("What is in these?", [image, notes, big, pending])
    events = sse_events(await api.chatkit(token, {"type": "threads.create", "params": {"input": message}}))
    assert not [e for e in events if e["type"] == "error"], events

    parts = _user_parts(llm)
    images = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
    assert images == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    texts = [p.get("text", "") for p in parts if p.get("type") == "text"]
    assert any("notes.txt" in t and "shopping: figs, bread\nline two" in t for t in texts), texts
    big_text = next(t for t in texts if "big.txt" in t)
    assert "truncated" in big_text and "TAIL-NOT-SHOWN" not in big_text and len(big_text) < 34_000
    assert any("later.png" in t and "not uploaded" in t for t in texts), texts
    assert "What is in these?" in json.dumps(parts)
