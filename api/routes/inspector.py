"""The memory inspector page: `GET /`, its static files, its config, and the development sign-in.

The page is plain HTML/JS/CSS committed under api/inspector/static (nothing is built).
The two browser libraries it loads (livekit-client, supabase-js) are installed by
`npm ci` in api/inspector (scripts/setup.sh does it) and served from node_modules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.body import json_body_schema, parse_json_body, read_limited_body
from api.devtoken import DevTokenError, mint_dev_token
from api.services import Services
from memory.identity import identity_to_uuid
from memory.settings import Settings

router = APIRouter(tags=["inspector"])

ROOT = Path(__file__).resolve().parents[1] / "inspector"
STATIC = ROOT / "static"
VENDOR = {
    "livekit-client.js": ROOT / "node_modules" / "livekit-client" / "dist" / "livekit-client.umd.js",
    "supabase.js": ROOT / "node_modules" / "@supabase" / "supabase-js" / "dist" / "umd" / "supabase.js",
}
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
NO_CACHE = {"Cache-Control": "no-cache"}
DEV_TOKEN_TTL = timedelta(hours=8)
DEFAULT_DEV_IDENTITY = "developer@localhost"


class InspectorConfig(BaseModel):
    """What the page needs to know before sign-in (nothing secret: the anon key is public by design)."""

    supabase_url: str | None
    supabase_anon_key: str | None
    dev_login: bool = Field(description="true: the one-click local identity is available")
    voice: bool = Field(description="true: LiveKit is configured, so the page can start a voice call")


class DevLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: str = Field(default=DEFAULT_DEV_IDENTITY, min_length=1, max_length=320)


class DevLogin(BaseModel):
    access_token: str
    user_id: str
    expires_at: datetime


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _origin(url: str | None, *, websocket: bool = False) -> list[str]:
    """`url`'s origin for a CSP source list (plus its ws/http twin: LiveKit uses both)."""
    if not url:
        return []
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return []
    origins = [f"{parts.scheme}://{parts.netloc}"]
    if websocket:
        twin = {"wss": "https", "ws": "http", "https": "wss", "http": "ws"}.get(parts.scheme)
        if twin:
            origins.append(f"{twin}://{parts.netloc}")
    return origins


def content_security_policy(settings: Settings) -> str:
    """Only our own scripts run, and the page talks only to this API, Supabase Auth and LiveKit."""
    connect = ["'self'", *_origin(settings.supabase_url), *_origin(settings.livekit_url, websocket=True)]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            f"connect-src {' '.join(dict.fromkeys(connect))}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


@router.get("/", include_in_schema=False)
async def page(request: Request) -> FileResponse:
    headers = {
        **NO_CACHE,
        "Content-Security-Policy": content_security_policy(_services(request).settings),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=headers)


@router.get("/inspector/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no inspector file {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=NO_CACHE)


@router.get("/inspector/vendor/{name}", include_in_schema=False)
async def vendor(name: str) -> FileResponse:
    path = VENDOR.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no vendored library {name!r}")
    if not path.is_file():
        raise HTTPException(
            status_code=404,
            detail=f"{name} is not installed: run scripts/setup.sh (it runs `npm ci` in api/inspector)",
        )
    return FileResponse(path, media_type="text/javascript")


@router.get("/inspector-config", response_model=InspectorConfig)
async def config(request: Request) -> InspectorConfig:
    """How the page can sign in and whether it can place voice calls."""
    settings = _services(request).settings
    return InspectorConfig(
        supabase_url=settings.supabase_url if settings.supabase_anon_key else None,
        supabase_anon_key=settings.supabase_anon_key,
        dev_login=settings.api_dev_login,
        voice=bool(settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret),
    )


@router.post(
    "/dev-login",
    response_model=DevLogin,
    openapi_extra=json_body_schema(DevLoginRequest),
    responses={404: {"description": "API_DEV_LOGIN is off"}},
)
async def dev_login(request: Request) -> DevLogin:
    """Development only (API_DEV_LOGIN=true): an access token for a local identity, no password."""
    settings = _services(request).settings
    if not settings.api_dev_login:
        raise HTTPException(
            status_code=404, detail="the development sign-in is off (API_DEV_LOGIN); sign in with Supabase"
        )
    body = parse_json_body(await read_limited_body(request, 4096), DevLoginRequest, '{"identity": "me@localhost"}')
    try:
        user_id = identity_to_uuid(body.identity, settings.identity_namespace)
        token = mint_dev_token(settings, body.identity, ttl_seconds=int(DEV_TOKEN_TTL.total_seconds()))
    except DevTokenError as exc:
        raise HTTPException(status_code=503, detail=f"the development sign-in cannot work: {exc}") from None
    return DevLogin(access_token=token, user_id=user_id, expires_at=datetime.now(UTC) + DEV_TOKEN_TTL)
