"""Export, erase and the health check over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from memory.settings import Settings
from tests.fixtures.redis_servers import RedisServer
from tests.http.conftest import RunningApp, Tokens, new_user, serve, sse_events, user_message


async def test_export_contains_everything_of_the_user(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user, email="carol@example.com")
    await api.services.store.memories.remember(user, "work", "employer", "Acme", source="api")
    events = sse_events(
        await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("hello there")}})
    )
    thread_id = events[0]["thread"]["id"]
    await api.chatkit(
        token, {"type": "attachments.create", "params": {"name": "r.pdf", "size": 5, "mime_type": "application/pdf"}}
    )

    response = await api.client.get("/me/export", headers=api.auth(token))
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["user_id"] == user
    assert data["profile"]["id"] == user and data["profile"]["email"] == "carol@example.com"
    assert [(m["category"], m["key"], m["value"]) for m in data["memories"]] == [("work", "employer", "Acme")]
    assert [(c["op"], c["source"], c["key"]) for c in data["memory_changes"]] == [("remember", "api", "employer")]
    assert [t["id"] for t in data["threads"]] == [thread_id]
    assert [i["type"] for i in data["threads"][0]["items"]] == ["user_message", "assistant_message"]
    assert data["threads"][0]["items"][0]["content"][0]["text"] == "hello there"
    assert [a["name"] for a in data["attachments"]] == ["r.pdf"]


async def test_delete_me_erases_everything_and_is_idempotent(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    await api.services.store.memories.remember(user, "work", "employer", "Acme")
    await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("hi")}})
    assert (await api.client.delete("/me", headers=api.auth(token))).status_code == 204
    data = (await api.client.get("/me/export", headers=api.auth(token))).json()
    assert data["memories"] == [] and data["threads"] == [] and data["profile"] is None
    assert data["memory_changes"] == []
    assert (await api.client.delete("/me", headers=api.auth(token))).status_code == 204


async def test_healthz_follows_the_store(
    settings_factory: Callable[..., Settings], fresh_redis_server: RedisServer
) -> None:
    async with serve(settings_factory(store_url=fresh_redis_server.url, store_connect_timeout=2)) as api:
        ok = await api.client.get("/healthz")
        assert ok.status_code == 200 and ok.json() == {"status": "ok"}
        await fresh_redis_server.astop()
        down = await api.client.get("/healthz")
        assert down.status_code == 503 and "STORE_URL" in down.json()["detail"]
        assert str(fresh_redis_server.port) not in down.text
        await fresh_redis_server.astart()
        assert (await api.client.get("/healthz")).status_code == 200


async def test_patch_me_switches_memory_off_and_on_for_the_caller_only(api: RunningApp, tokens: Tokens) -> None:
    alice, bob = new_user(), new_user()
    await api.services.store.profiles.ensure(bob)

    off = await api.client.patch("/me", json={"memory_enabled": False}, headers=api.auth(tokens.mint(alice)))

    assert off.status_code == 200
    assert (off.json()["user_id"], off.json()["memory_enabled"]) == (alice, False)
    assert off.json()["profile"]["id"] == alice
    profile = await api.services.store.profiles.get(alice)
    assert profile is not None and profile.memory_enabled is False
    other = await api.services.store.profiles.get(bob)
    assert other is not None and other.memory_enabled is True
    export = (await api.client.get("/me/export", headers=api.auth(tokens.mint(alice)))).json()
    assert export["profile"]["memory_enabled"] is False

    on = await api.client.patch("/me", json={"memory_enabled": True}, headers=api.auth(tokens.mint(alice)))
    assert on.status_code == 200 and on.json()["memory_enabled"] is True
    profile = await api.services.store.profiles.get(alice)
    assert profile is not None and profile.memory_enabled is True


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "not JSON"),
        (b"{}", "nothing to change"),
        (b"[true]", "nothing to change"),
        (b'{"memory_enabled": "no"}', "true or false"),
        (b'{"memory_enabled": null}', "true or false"),
        (b'{"memory_enabled": false, "email": "x@example.com"}', "unknown field(s) email"),
    ],
)
async def test_patch_me_rejects_bad_bodies_saying_what_to_send(
    api: RunningApp, tokens: Tokens, body: bytes, expected: str
) -> None:
    user = new_user()
    response = await api.client.patch(
        "/me", content=body, headers={**api.auth(tokens.mint(user)), "Content-Type": "application/json"}
    )

    assert response.status_code == 400 and expected in response.json()["detail"]
    assert await api.services.store.profiles.get(user) is None


async def test_patch_me_needs_a_token(api: RunningApp) -> None:
    response = await api.client.patch("/me", json={"memory_enabled": False})

    assert response.status_code == 401
