"""Export, erase and the health check over HTTP."""

from __future__ import annotations

from collections.abc import Callable

from memory.settings import Settings
from tests.fixtures.redis_servers import RedisServer
from tests.http.conftest import RunningApp, Tokens, new_user, serve, sse_events, user_message


async def test_export_contains_everything_of_the_user(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user, email="carol@example.com")
    await api.services.store.memories.remember(user, "work", "employer", "Acme")
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
