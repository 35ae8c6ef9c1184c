"""`POST /livekit/token`: a LiveKit room token for the signed-in user, so voice and chat share one user.

The participant identity is the Supabase user id (which `identity_to_uuid` maps to
itself), and the token dispatches our agent into the room. Rooms live in the
user's own namespace (`user-<uuid>` or `user-<uuid>-<label>`) so nobody can ask
for a token to somebody else's call.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from jwt.warnings import InsecureKeyLengthWarning
from livekit import api as lk
from pydantic import BaseModel, Field, ValidationError

from api.auth import CurrentUser
from api.body import read_limited_body
from api.services import Services
from api.text import clean_display_name
from memory.settings import Settings

router = APIRouter()

TOKEN_TTL = timedelta(hours=1)
MAX_BODY = 4096
NOT_CONFIGURED = "LiveKit is not configured on this server: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET"


class TokenRequest(BaseModel):
    room: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str | None = Field(default=None, min_length=1, max_length=128)


class TokenResponse(BaseModel):
    token: str
    url: str
    room: str
    identity: str
    expires_at: datetime


def user_room(user_id: str, label: str | None) -> str:
    """The room a user may join: their default room, or a labelled room in their namespace."""
    default = f"user-{user_id}"
    if not label or label == default:
        return default
    if label.startswith(default + "-"):
        return label
    return f"{default}-{label}"


@router.post("/livekit/token", response_model=TokenResponse)
async def livekit_token(request: Request, user: CurrentUser) -> TokenResponse:
    services: Services = request.app.state.services
    settings = services.settings
    if not (settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
        raise HTTPException(status_code=503, detail=NOT_CONFIGURED)
    body = await read_limited_body(request, MAX_BODY)
    try:
        wanted = TokenRequest.model_validate(json.loads(body) if body.strip() else {})
    except (ValueError, ValidationError, RecursionError):  # RecursionError: absurdly nested JSON
        raise HTTPException(
            status_code=400,
            detail='expected JSON like {"room": "kitchen"} (room: 1-64 letters, digits, "_" or "-"), or no body',
        ) from None
    room = user_room(user.user_id, wanted.room)
    name = clean_display_name(wanted.name) if wanted.name else ""
    expires_at = datetime.now(UTC) + TOKEN_TTL
    with warnings.catch_warnings():
        # a short dev secret (`livekit-server --dev` uses "secret") was reported once at startup
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = _mint(settings, user.user_id, name or user.email or user.user_id, room)
    return TokenResponse(token=token, url=settings.livekit_url, room=room, identity=user.user_id, expires_at=expires_at)


def _mint(settings: Settings, identity: str, name: str, room: str) -> str:
    assert settings.livekit_api_key and settings.livekit_api_secret  # checked by the route
    return (
        lk.AccessToken(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
        .with_identity(identity)
        .with_name(name)
        .with_ttl(TOKEN_TTL)
        .with_grants(
            lk.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True)
        )
        .with_room_config(lk.RoomConfiguration(agents=[lk.RoomAgentDispatch(agent_name=settings.agent_name)]))
        .to_jwt()
    )
