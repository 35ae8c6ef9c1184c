"""A loopback fake of LiveKit's server API (Twirp RoomService), recording every request.

Speaks what `livekit-api` sends: POST /twirp/livekit.RoomService/<Method> with a
protobuf body and `Authorization: Bearer <JWT signed with the API secret>`. The JWT
is verified (signature and the video grant the method needs), so a request with the
wrong secret or grant is refused with a Twirp error like the real server's.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from livekit import api as lk

_GRANTS = {"ListRooms": "roomList", "DeleteRoom": "roomCreate", "RemoveParticipant": "roomAdmin"}


@dataclass
class Recorded:
    method: str
    request: Any
    claims: dict[str, Any]


@dataclass
class FakeLiveKit:
    api_key: str
    api_secret: str
    rooms: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def calls(self, method: str) -> list[Any]:
        return [r.request for r in self.requests if r.method == method]

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.api_secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            return web.json_response({"code": "unauthenticated", "msg": "invalid token"}, status=401)
        grant = _GRANTS.get(method)
        if claims.get("iss") != self.api_key or grant is None or not claims.get("video", {}).get(grant):
            return web.json_response({"code": "permission_denied", "msg": "missing grant"}, status=403)
        body = await request.read()
        if method == "ListRooms":
            self.requests.append(Recorded(method, lk.ListRoomsRequest.FromString(body), claims))
            reply: Any = lk.ListRoomsResponse(
                rooms=[lk.Room(name=name, sid=f"RM_{n}") for n, name in enumerate(self.rooms)]
            )
        elif method == "DeleteRoom":
            deleted = lk.DeleteRoomRequest.FromString(body)
            self.requests.append(Recorded(method, deleted, claims))
            if deleted.room in self.rooms:
                self.rooms.remove(deleted.room)
            reply = lk.DeleteRoomResponse()
        else:
            removed = lk.RoomParticipantIdentity.FromString(body)
            self.requests.append(Recorded(method, removed, claims))
            reply = lk.RemoveParticipantResponse()
        return web.Response(body=reply.SerializeToString(), content_type="application/protobuf")


@asynccontextmanager
async def fake_livekit(
    api_key: str = "APIfake", api_secret: str = "fake-secret-0123456789abcdef0123456789"
) -> AsyncIterator[FakeLiveKit]:
    """Serve the fake on a free 127.0.0.1 port; `fake.url` is what LIVEKIT_URL should be."""
    fake = FakeLiveKit(api_key, api_secret)
    app = web.Application()
    app.router.add_post("/twirp/livekit.RoomService/{method}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:  # a free port (aiohttp's site hides the bound one)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.url = f"ws://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
