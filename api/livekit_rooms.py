"""End a user's live calls through LiveKit's server API (RoomService), e.g. after DELETE /me.

Rooms live in the user's namespace (`user-<uuid>` or `user-<uuid>-<label>`, see
`api.routes.livekit`), so ListRooms + DeleteRoom on those names ends every call the
user joined through our tokens: LiveKit disconnects everyone and the agent's job
shuts down. This is the fast path; the change feed (`agent.follow`) ends the calls
independently of it, also where no LiveKit credentials are configured.
"""

from __future__ import annotations

import logging

import aiohttp
from livekit import api as lk

from api.routes.livekit import user_room
from memory.settings import Settings

logger = logging.getLogger("memory_agent.api")

REQUEST_TIMEOUT_S = 5.0


def livekit_configured(settings: Settings) -> bool:
    return bool(settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret)


def is_user_room(user_id: str, room: str) -> bool:
    """True for the rooms `POST /livekit/token` hands this user (and no one else's)."""
    default = user_room(user_id, None)
    return room == default or room.startswith(default + "-")


async def end_user_calls(settings: Settings, user_id: str) -> list[str]:
    """Delete every LiveKit room of the user; returns their names ([] when LiveKit is not configured).

    Raises what the LiveKit client raises (the caller logs it: the data is already erased).
    """
    if not livekit_configured(settings):
        return []
    assert settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret
    client = lk.LiveKitAPI(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret.get_secret_value(),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )
    try:
        listed = await client.room.list_rooms(lk.ListRoomsRequest())
        rooms = [room.name for room in listed.rooms if is_user_room(user_id, room.name)]
        for name in rooms:
            await client.room.delete_room(lk.DeleteRoomRequest(room=name))
    finally:
        await client.aclose()
    return rooms
