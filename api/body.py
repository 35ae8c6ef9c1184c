"""Reading request bodies with a hard size limit, enforced while the bytes arrive."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def too_large(limit: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"request body is larger than the limit of {limit} bytes")


def declared_length(request: Request) -> int | None:
    """The Content-Length header as an int (None if absent); 400 if it is not a number."""
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise HTTPException(status_code=400, detail="Content-Length is not a number") from None
    if length < 0:
        raise HTTPException(status_code=400, detail="Content-Length is negative")
    return length


async def limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The body chunk by chunk; 413 as soon as more than `limit` bytes arrived (or were announced)."""
    length = declared_length(request)
    if length is not None and length > limit:
        raise too_large(limit)
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large(limit)
        if chunk:
            yield chunk


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (413 otherwise)."""
    parts = [chunk async for chunk in limited_stream(request, limit)]
    return b"".join(parts)


def parse_json_body(body: bytes, model: type[M], example: str) -> M:
    """`body` as `model`; one 400 naming the first problem and an example of what is expected."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        where = ".".join(str(part) for part in errors[0].get("loc", ())) if errors else ""
        problem = f"{where}: {errors[0].get('msg', 'invalid')}" if errors and where else "not valid JSON"
        raise HTTPException(status_code=400, detail=f"{problem}; expected JSON like {example}") from None


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body the route reads itself (size-limited) instead of through FastAPI."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}
