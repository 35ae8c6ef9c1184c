"""Two users over HTTP: lists, gets, item pages, renames, messages, attachments, export and delete never cross."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from memory.settings import Settings
from tests.http.conftest import RunningApp, Tokens, new_user, serve, sse_events, user_message


@pytest.fixture(params=["memory", "sqlite"])
async def api(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[RunningApp]:
    """The app on the in-process store and on SQLite (real serialisation and persistence)."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'store.db'}"
    async with serve(settings_factory(store_url=url)) as running:
        yield running


async def start_thread(api: RunningApp, token: str, text: str) -> str:
    response = await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message(text)}})
    assert response.status_code == 200, response.text
    thread_id: str = sse_events(response)[0]["thread"]["id"]
    return thread_id


async def items(api: RunningApp, token: str, thread_id: str) -> Any:
    return await api.chatkit(token, {"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}})


async def test_two_users_never_see_or_change_each_others_data(api: RunningApp, tokens: Tokens) -> None:
    alice, bob = new_user(), new_user()
    a, b = tokens.mint(alice), tokens.mint(bob)
    store = api.services.store
    await store.memories.remember(alice, "preference", "drink", "oolong tea")
    await store.memories.remember(bob, "preference", "drink", "espresso")
    a_thread = await start_thread(api, a, "alice's secret plan")
    b_thread = await start_thread(api, b, "bob's grocery list")
    a_attachment = (
        await api.chatkit(
            a, {"type": "attachments.create", "params": {"name": "a.txt", "size": 3, "mime_type": "text/plain"}}
        )
    ).json()

    # lists
    assert [t["id"] for t in (await api.chatkit(a, {"type": "threads.list", "params": {}})).json()["data"]] == [
        a_thread
    ]
    assert [t["id"] for t in (await api.chatkit(b, {"type": "threads.list", "params": {}})).json()["data"]] == [
        b_thread
    ]
    # gets, item pages, renames and new messages on the other user's thread: 404, nothing changes
    for request in (
        {"type": "threads.get_by_id", "params": {"thread_id": a_thread}},
        {"type": "items.list", "params": {"thread_id": a_thread}},
        {"type": "threads.update", "params": {"thread_id": a_thread, "title": "pwned"}},
        {"type": "threads.add_user_message", "params": {"thread_id": a_thread, "input": user_message("hi")}},
        {"type": "threads.create", "params": {"input": user_message("x", attachments=[a_attachment["id"]])}},
    ):
        response = await api.chatkit(b, request)
        assert response.status_code == 404, (request["type"], response.text)
        assert "secret" not in response.text
    # a cursor from another user's list gives an empty page, never the first page again
    page = await api.chatkit(b, {"type": "threads.list", "params": {"after": a_thread, "limit": 5}})
    assert page.status_code == 200 and page.json()["data"] == []
    # deleting someone else's thread or attachment is a no-op for them
    assert (await api.chatkit(b, {"type": "threads.delete", "params": {"thread_id": a_thread}})).status_code == 200
    await api.chatkit(b, {"type": "attachments.delete", "params": {"attachment_id": a_attachment["id"]}})

    a_items = (await items(api, a, a_thread)).json()["data"]
    assert a_items[0]["content"][0]["text"] == "alice's secret plan" and len(a_items) == 2
    a_get = (await api.chatkit(a, {"type": "threads.get_by_id", "params": {"thread_id": a_thread}})).json()
    assert a_get.get("title") != "pwned"
    assert (await store.threads.load_attachment(a_attachment["id"], {"user_id": alice})).id == a_attachment["id"]

    # exports hold only their owner's data
    a_export = (await api.client.get("/me/export", headers=api.auth(a))).json()
    b_export = (await api.client.get("/me/export", headers=api.auth(b))).json()
    assert a_export["user_id"] == alice and b_export["user_id"] == bob
    assert [t["id"] for t in a_export["threads"]] == [a_thread]
    assert [m["value"] for m in a_export["memories"]] == ["oolong tea"]
    assert [x["id"] for x in a_export["attachments"]] == [a_attachment["id"]]
    assert "alice" not in str(b_export) and "oolong" not in str(b_export)
    assert b_export["attachments"] == [] and [t["id"] for t in b_export["threads"]] == [b_thread]

    # deleting bob leaves alice untouched
    assert (await api.client.delete("/me", headers=api.auth(b))).status_code == 204
    assert (await api.chatkit(b, {"type": "threads.list", "params": {}})).json()["data"] == []
    assert (await api.client.get("/me/export", headers=api.auth(b))).json()["memories"] == []
    assert len((await items(api, a, a_thread)).json()["data"]) == 2
    assert [m.value for m in await store.memories.list(alice)] == ["oolong tea"]
