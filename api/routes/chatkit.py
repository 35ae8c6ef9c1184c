"""`POST /chatkit`: the ChatKit protocol endpoint, scoped to the signed-in user."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from chatkit.server import StreamingResult
from chatkit.store import NotFoundError
from chatkit.types import ChatKitReq, ErrorEvent, ThreadsDeleteReq, is_streaming_req
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError

from api.auth import AuthenticatedUser, CurrentUser
from api.body import read_limited_body
from api.context import RequestContext
from api.limits import apply_input_limits
from api.services import Services
from stores import StoreUnavailableError

logger = logging.getLogger("memory_agent.api.chatkit")
router = APIRouter()
_REQUEST = TypeAdapter[Any](ChatKitReq)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "not a ChatKit request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


async def _check_references(request: Any, services: Services, context: RequestContext) -> None:
    """Load what a request names first, so a missing or foreign id is a 404 (before any stream starts)."""
    params = request.params
    threads = services.store.threads
    thread_id = getattr(params, "thread_id", None)
    if thread_id is not None:
        await threads.load_thread(thread_id, context)
        item_id = getattr(params, "item_id", None)
        if item_id is not None:
            await threads.load_item(thread_id, item_id, context)
    for attachment_id in getattr(getattr(params, "input", None), "attachments", None) or []:
        await threads.load_attachment(attachment_id, context)


async def _ensure_profile(services: Services, user: AuthenticatedUser) -> None:
    try:
        await services.store.profiles.ensure(user.user_id, email=user.email)
    except ValueError:  # an email our profile rules refuse must not block chatting
        await services.store.profiles.ensure(user.user_id)


def _sse(event: ErrorEvent) -> bytes:
    return b"data: " + event.model_dump_json(by_alias=True, exclude_none=True).encode() + b"\n\n"


async def _guarded(result: StreamingResult) -> AsyncIterator[bytes]:
    """Once the 200 is sent an error can only be an event: end the stream with a readable one."""
    try:
        async for chunk in result:
            yield chunk
    except (NotFoundError, ValueError) as exc:
        yield _sse(ErrorEvent(code="custom", message=str(exc)[:500], allow_retry=False))
    except StoreUnavailableError:
        yield _sse(ErrorEvent(code="custom", message="the data store is unavailable; try again", allow_retry=True))


@router.post("/chatkit")
async def chatkit_endpoint(request: Request, user: CurrentUser) -> Response:
    services: Services = request.app.state.services
    body = await read_limited_body(request, services.settings.max_request_bytes)
    try:
        parsed = _REQUEST.validate_json(body)
    except ValidationError as exc:
        raise HTTPException(status_code=400, detail=f"malformed ChatKit request: {_first_error(exc)}") from None
    apply_input_limits(parsed)
    context = RequestContext(user_id=user.user_id)
    if not isinstance(parsed, ThreadsDeleteReq):  # deleting stays idempotent
        await _check_references(parsed, services, context)
    if is_streaming_req(parsed):
        await _ensure_profile(services, user)
    try:
        result = await services.chat.process_parsed(parsed, context)
    except NotImplementedError:
        raise HTTPException(status_code=501, detail=f"{parsed.type} is not supported by this server") from None
    if isinstance(result, StreamingResult):
        return StreamingResponse(
            _guarded(result),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return Response(content=result.json, media_type="application/json")
