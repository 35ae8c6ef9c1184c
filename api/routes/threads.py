"""The caller's conversations (voice calls and chats) as plain JSON: list, read a transcript, delete.

ChatKit's own `/chatkit` protocol can do the same, but a page that only shows
transcripts is simpler with three small routes that speak plain JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from chatkit.store import NotFoundError
from chatkit.types import AssistantMessageItem, ThreadItem, ThreadMetadata, UserMessageItem
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import CurrentUser
from api.context import RequestContext
from api.services import Services

router = APIRouter(tags=["conversations"])

PAGE = 100


class ThreadOut(BaseModel):
    """One conversation."""

    id: str
    title: str | None
    created_at: datetime
    source: Literal["voice", "chat"] = Field(description="'voice' for a call transcript, 'chat' otherwise")


class ThreadList(BaseModel):
    threads: list[ThreadOut] = Field(description="newest first")
    has_more: bool
    after: str | None = Field(description="pass as `after` to get the next page")


class MessageOut(BaseModel):
    """One message of a transcript (tool calls and widgets are left out)."""

    id: str
    role: Literal["user", "assistant"]
    text: str
    created_at: datetime


class Transcript(ThreadOut):
    messages: list[MessageOut] = Field(description="oldest first")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _thread(thread: ThreadMetadata) -> ThreadOut:
    metadata: dict[str, Any] = thread.metadata or {}
    source: Literal["voice", "chat"] = "voice" if metadata.get("source") == "voice" else "chat"
    return ThreadOut(id=thread.id, title=thread.title, created_at=thread.created_at, source=source)


def _message(item: ThreadItem) -> MessageOut | None:
    if isinstance(item, UserMessageItem):
        text = " ".join(part.text for part in item.content if getattr(part, "text", None))
        return MessageOut(id=item.id, role="user", text=text, created_at=item.created_at)
    if isinstance(item, AssistantMessageItem):
        text = " ".join(part.text for part in item.content)
        return MessageOut(id=item.id, role="assistant", text=text, created_at=item.created_at)
    return None


def _missing(thread_id: str) -> HTTPException:
    return HTTPException(
        status_code=404, detail=f"no conversation {thread_id!r} (deleted?); GET /me/threads lists yours"
    )


@router.get("/me/threads", response_model=ThreadList)
async def list_threads(
    request: Request,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=PAGE)] = PAGE,
    after: Annotated[str | None, Query(max_length=128, description="cursor from the previous page")] = None,
) -> ThreadList:
    """The caller's conversations, newest first."""
    context = RequestContext(user_id=user.user_id)
    page = await _services(request).store.threads.load_threads(limit, after, "desc", context)
    return ThreadList(threads=[_thread(t) for t in page.data], has_more=page.has_more, after=page.after)


@router.get("/me/threads/{thread_id}", response_model=Transcript, responses={404: {"description": "no such thread"}})
async def get_thread(request: Request, user: CurrentUser, thread_id: str) -> Transcript:
    """One conversation with its messages in order."""
    threads = _services(request).store.threads
    context = RequestContext(user_id=user.user_id)
    try:
        thread = await threads.load_thread(thread_id, context)
    except NotFoundError:
        raise _missing(thread_id) from None
    messages: list[MessageOut] = []
    cursor: str | None = None
    while True:
        page = await threads.load_thread_items(thread_id, cursor, PAGE, "asc", context)
        messages.extend(m for m in map(_message, page.data) if m is not None)
        if not page.has_more:
            break
        cursor = page.after
    return Transcript(**_thread(thread).model_dump(), messages=messages)


@router.delete("/me/threads/{thread_id}", status_code=204, responses={404: {"description": "no such thread"}})
async def delete_thread(request: Request, user: CurrentUser, thread_id: str) -> Response:
    """Delete one conversation with its messages and attachments (memories learnt in it stay)."""
    threads = _services(request).store.threads
    context = RequestContext(user_id=user.user_id)
    try:
        await threads.load_thread(thread_id, context)
    except NotFoundError:
        raise _missing(thread_id) from None
    await threads.delete_thread(thread_id, context)
    return Response(status_code=204)
