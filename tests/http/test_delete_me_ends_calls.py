"""DELETE /me ends the user's calls: LiveKit rooms deleted through the server API, and an erase on the feed."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from memory.settings import Settings
from stores.changes import Change, Subscription
from tests.fakes.livekit_server import fake_livekit
from tests.http.conftest import Tokens, new_user, serve


async def test_delete_me_deletes_exactly_the_users_livekit_rooms(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    user, other = new_user(), new_user()
    async with fake_livekit() as livekit:
        livekit.rooms = [f"user-{user}", f"user-{user}-kitchen", f"user-{other}", f"user-{user}x", "lobby"]
        settings = settings_factory(
            livekit_url=livekit.url, livekit_api_key=livekit.api_key, livekit_api_secret=livekit.api_secret
        )
        async with serve(settings) as api:
            await api.services.store.memories.remember(user, "work", "employer", "Acme")
            changes = api.services.store.changes.subscribe(user).start()

            response = await api.client.delete("/me", headers=api.auth(tokens.mint(user)))

            assert response.status_code == 204
            assert sorted(r.room for r in livekit.calls("DeleteRoom")) == [f"user-{user}", f"user-{user}-kitchen"]
            assert livekit.rooms == [f"user-{other}", f"user-{user}x", "lobby"]
            assert len(livekit.calls("ListRooms")) == 1
            heard = [c async for c in _until_erase(changes)]
            assert heard[-1].kind == "erase" and heard[-1].user_id == user
            assert await api.services.store.memories.list(user) == []


async def test_delete_me_erases_even_when_livekit_is_unreachable(
    settings_factory: Callable[..., Settings], tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    secret = "unreachable-secret-0123456789abcdef01"
    settings = settings_factory(
        livekit_url=f"ws://127.0.0.1:{dead}", livekit_api_key="APIdead", livekit_api_secret=secret
    )
    user = new_user()
    async with serve(settings) as api:
        await api.services.store.memories.remember(user, "work", "employer", "Acme")
        with caplog.at_level(logging.WARNING, logger="memory_agent.api"):
            response = await api.client.delete("/me", headers=api.auth(tokens.mint(user)))
        assert response.status_code == 204
        assert await api.services.store.memories.list(user) == []
    assert "change feed" in caplog.text
    assert secret not in caplog.text


async def test_delete_me_without_livekit_settings_still_announces_the_erase(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    user = new_user()
    async with serve(settings_factory()) as api:
        changes = api.services.store.changes.subscribe(user).start()
        response = await api.client.delete("/me", headers=api.auth(tokens.mint(user)))
        assert response.status_code == 204
        heard = [c async for c in _until_erase(changes)]
        assert heard[-1].kind == "erase"


async def _until_erase(changes: Subscription) -> AsyncIterator[Change]:
    while True:
        change = await asyncio.wait_for(anext(changes), 5)
        yield change
        if change.kind == "erase":
            changes.close()
            return
