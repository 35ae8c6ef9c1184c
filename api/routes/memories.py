"""The caller's memories as JSON: list/search, correct one value, forget one, forget one conversation's.

Used by the memory inspector page; every route is scoped to the signed-in user, and
category/key are normalised by the store exactly as the agent does (so `Favourite
Colour` and `favourite_colour` are the same memory).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CurrentUser
from api.body import json_body_schema, parse_json_body, read_limited_body
from api.services import Services
from memory.models import MAX_VALUE_LENGTH, Memory, normalize_category

router = APIRouter(tags=["memories"])

MAX_BODY = 16 * 1024
SEARCH_LIMIT = 100
SOURCE_EDIT = "api"  # the user acted through this API (an edited value no longer comes from a conversation)


class MemoryOut(BaseModel):
    """One remembered fact, with where it came from."""

    id: str
    category: str
    key: str
    value: str
    source: str | None = Field(description="where it was learnt: 'voice', 'chat', 'api' (edited by the user), ...")
    thread_id: str | None = Field(default=None, description="the conversation it was learnt in, if any")
    item_id: str | None = Field(default=None, description="the message it was learnt from, if any")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, memory: Memory) -> MemoryOut:
        return cls.model_validate(memory.model_dump(include=set(cls.model_fields)))


class MemoryList(BaseModel):
    memories: list[MemoryOut] = Field(description="newest first, or most relevant first when `query` is given")


class MemoryValue(BaseModel):
    """Body of `PUT /me/memories/{category}/{key}`."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=MAX_VALUE_LENGTH, description="the corrected value")


class Forgotten(BaseModel):
    forgotten: int = Field(description="how many memories were forgotten")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.get("/me/memories", response_model=MemoryList)
async def list_memories(
    request: Request,
    user: CurrentUser,
    query: Annotated[str, Query(max_length=500, description="search text; empty lists everything")] = "",
    category: Annotated[str | None, Query(max_length=64, description="only this category")] = None,
) -> MemoryList:
    """The caller's memories: all (newest first), one category, or the best matches for `query`."""
    memories = _services(request).store.memories
    if query.strip():
        found = await memories.search(user.user_id, query, limit=SEARCH_LIMIT)
        if category:
            wanted = normalize_category(category)
            found = [m for m in found if m.category == wanted]
    else:
        found = await memories.list(user.user_id, category=category or None)
    return MemoryList(memories=[MemoryOut.of(m) for m in found])


@router.put(
    "/me/memories/{category}/{key}",
    response_model=MemoryOut,
    openapi_extra=json_body_schema(MemoryValue),
)
async def put_memory(request: Request, user: CurrentUser, category: str, key: str) -> MemoryOut:
    """Set (correct or add) one memory's value; it is then marked as coming from the user ('api')."""
    body = parse_json_body(await read_limited_body(request, MAX_BODY), MemoryValue, '{"value": "Maya"}')
    memory = await _services(request).store.memories.remember(
        user.user_id, category, key, body.value, source=SOURCE_EDIT
    )
    return MemoryOut.of(memory)


@router.delete("/me/memories/{category}/{key}", status_code=204, responses={404: {"description": "no such memory"}})
async def delete_memory(request: Request, user: CurrentUser, category: str, key: str) -> Response:
    """Forget one memory."""
    if not await _services(request).store.memories.forget(user.user_id, category, key, source=SOURCE_EDIT):
        raise HTTPException(
            status_code=404,
            detail=f"no memory {category!r}/{key!r} to forget (already forgotten?); GET /me/memories lists them",
        )
    return Response(status_code=204)


@router.delete(
    "/me/threads/{thread_id}/memories",
    response_model=Forgotten,
    responses={400: {"description": "not a thread id"}},
)
async def forget_from_thread(request: Request, user: CurrentUser, thread_id: str) -> Forgotten:
    """Forget every memory learnt in one conversation (also after the conversation itself was deleted)."""
    count = await _services(request).store.memories.forget_from(user.user_id, thread_id, source=SOURCE_EDIT)
    return Forgotten(forgotten=count)
