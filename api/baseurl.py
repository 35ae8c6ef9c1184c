"""The public base URL of the request being served, for links the API hands out.

Upload and preview links must point back at this server. When PUBLIC_BASE_URL is
not set they are derived from the request (scheme, Host header, root path), so
`python -m api serve --port 9000` hands out links on port 9000. Behind a proxy that
rewrites Host, set PUBLIC_BASE_URL.
"""

from __future__ import annotations

from contextvars import ContextVar

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

_request_base_url: ContextVar[str | None] = ContextVar("request_base_url", default=None)


def request_base_url() -> str | None:
    """The base URL of the current HTTP request (no trailing slash), or None outside one."""
    return _request_base_url.get()


class RequestBaseUrlMiddleware:
    """Records each request's base URL for the duration of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _request_base_url.set(str(Request(scope).base_url).rstrip("/"))
        try:
            await self.app(scope, receive, send)
        finally:
            _request_base_url.reset(token)
