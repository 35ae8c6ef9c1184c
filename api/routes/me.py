"""The user's own data: export everything, delete everything, the memory switch; plus the health check."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import CurrentUser
from api.body import read_limited_body
from api.livekit_rooms import end_user_calls
from api.routes.profile import Me, describe
from api.services import Services
from stores.errors import redact_url

logger = logging.getLogger("memory_agent.api")
router = APIRouter()

PING_TIMEOUT = 5.0


@router.get("/me/export")
async def export_me(request: Request, user: CurrentUser) -> JSONResponse:
    """Everything stored for the caller: profile, memories, threads with items, attachment metadata."""
    services: Services = request.app.state.services
    data: dict[str, Any] = await services.store.export_user(user.user_id)
    data["exported_at"] = datetime.now(UTC).isoformat()
    return JSONResponse(
        data, headers={"Content-Disposition": f'attachment; filename="memory-export-{user.user_id}.json"'}
    )


@router.delete("/me", status_code=204)
async def delete_me(request: Request, user: CurrentUser) -> Response:
    """Erase the caller's profile, memories, threads, items, attachments and file bytes; end their calls.

    Live calls of the user hear the erase on the change feed and stop writing and end
    (within a second); with LiveKit credentials set, their rooms are also deleted
    through LiveKit's RoomService, which disconnects the caller at once.
    """
    services: Services = request.app.state.services
    await services.store.forget_user(user.user_id)
    logger.info("erased all data of user %s on request", user.user_id)
    try:
        ended = await end_user_calls(services.settings, user.user_id)
    except Exception as exc:  # the data is erased; the change feed still ends the calls
        logger.warning(
            "ending the LiveKit rooms of user %s failed (%s); their calls end through the change feed",
            user.user_id,
            type(exc).__name__,
        )
    else:
        if ended:
            logger.info("ended %d LiveKit room(s) of user %s", len(ended), user.user_id)
    return Response(status_code=204)


_PATCH_HINT = 'send a JSON object such as {"memory_enabled": false}'


class MemorySwitch(BaseModel):
    """Body of `PATCH /me`: the memory consent switch."""

    memory_enabled: bool = Field(description="false: nothing new is remembered or used for this user")


@router.patch(
    "/me",
    response_model=Me,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": MemorySwitch.model_json_schema()}}}
    },
)
async def patch_me(request: Request, user: CurrentUser) -> JSONResponse:
    """Change the caller's settings; today only `memory_enabled` (memory consent: off = nothing kept or used).

    Answers like `GET /me`.
    """
    services: Services = request.app.state.services
    body = await read_limited_body(request, services.settings.max_request_bytes)
    try:
        changes = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(status_code=400, detail=f"the body is not JSON; {_PATCH_HINT}") from None
    if not isinstance(changes, dict) or not changes:
        raise HTTPException(status_code=400, detail=f"nothing to change; {_PATCH_HINT}")
    unknown = sorted(str(name)[:40] for name in changes if name != "memory_enabled")
    if unknown:
        raise HTTPException(
            status_code=400, detail=f"unknown field(s) {', '.join(unknown)}: only memory_enabled can be changed"
        )
    enabled = changes["memory_enabled"]
    if not isinstance(enabled, bool):
        raise HTTPException(status_code=400, detail="memory_enabled must be true or false")
    await services.store.profiles.set_memory_enabled(user.user_id, enabled)
    logger.info("user %s switched memory %s", user.user_id, "on" if enabled else "off")
    return JSONResponse((await describe(services, user.user_id, user.email)).model_dump(mode="json"))


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 when the store answers within a few seconds, 503 otherwise (for load balancers)."""
    services: Services = request.app.state.services
    try:
        await asyncio.wait_for(services.store.ping(), timeout=PING_TIMEOUT)
    except Exception as exc:  # any failure means "not healthy"; the reason goes to the log only
        logger.warning("health check: store %s unreachable (%s)", redact_url(services.store.url), type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "detail": "the data store is unreachable; check STORE_URL and the server"},
            status_code=503,
        )
    return JSONResponse({"status": "ok"})
