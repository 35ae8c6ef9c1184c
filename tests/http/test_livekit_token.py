"""`POST /livekit/token`: a room token for the signed-in user that dispatches our agent."""

from __future__ import annotations

from collections.abc import Callable

import jwt

from memory import identity_to_uuid
from memory.settings import Settings
from tests.http.conftest import RunningApp, Tokens, new_user, serve

LIVEKIT = {"livekit_url": "ws://127.0.0.1:7880", "livekit_api_key": "devkey", "livekit_api_secret": "devsecret" * 4}


def decode(token: str) -> dict:
    claims: dict = jwt.decode(token, LIVEKIT["livekit_api_secret"], algorithms=["HS256"], issuer="devkey")
    return claims


async def test_token_for_the_same_user_with_agent_dispatch(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    user = new_user()
    async with serve(settings_factory(agent_name="memory-agent-test", **LIVEKIT)) as api:
        response = await api.client.post("/livekit/token", headers=api.auth(tokens.mint(user)))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["url"] == LIVEKIT["livekit_url"] and body["identity"] == user
        assert body["room"] == f"user-{user}"
        claims = decode(body["token"])
        assert claims["sub"] == user and identity_to_uuid(claims["sub"]) == user  # voice == chat user
        assert claims["video"]["roomJoin"] is True and claims["video"]["room"] == f"user-{user}"
        assert claims["roomConfig"]["agents"] == [{"agentName": "memory-agent-test"}]
        assert 0 < claims["exp"] - claims["nbf"] <= 3600

        labelled = await api.client.post(
            "/livekit/token", json={"room": "kitchen"}, headers=api.auth(tokens.mint(user))
        )
        assert labelled.json()["room"] == f"user-{user}-kitchen"
        assert decode(labelled.json()["token"])["video"]["room"] == f"user-{user}-kitchen"

        # asking for somebody else's room only ever yields a room in your own namespace
        other = new_user()
        sneaky = await api.client.post(
            "/livekit/token", json={"room": f"user-{other}"}, headers=api.auth(tokens.mint(user))
        )
        assert sneaky.status_code == 200 and sneaky.json()["room"].startswith(f"user-{user}-")

        bad = await api.client.post(
            "/livekit/token", json={"room": "no spaces/slashes"}, headers=api.auth(tokens.mint(user))
        )
        assert bad.status_code == 400 and "room" in bad.json()["detail"]
        assert (await api.client.post("/livekit/token")).status_code == 401


async def test_503_when_livekit_is_not_configured(api: RunningApp, tokens: Tokens) -> None:
    response = await api.client.post("/livekit/token", headers=api.auth(tokens.mint(new_user())))
    assert response.status_code == 503
    assert "LIVEKIT_API_KEY" in response.json()["detail"] and "LIVEKIT_API_SECRET" in response.json()["detail"]
