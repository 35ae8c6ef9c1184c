"""Short-lived HS256 Supabase-style access tokens for local development (`python -m api token ...`)."""

from __future__ import annotations

import time
import uuid

import jwt

from api.auth import USER_ROLE, supabase_issuer
from memory.identity import identity_to_uuid
from memory.settings import Settings

DEFAULT_TTL_SECONDS = 3600


class DevTokenError(Exception):
    """The settings cannot produce a token the API would accept."""


def mint_dev_token(settings: Settings, identity: str, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A token for `identity` (mapped to its UUID) signed with SUPABASE_JWT_SECRET, valid `ttl_seconds`."""
    if settings.supabase_jwt_secret is None or not settings.supabase_jwt_secret.get_secret_value():
        raise DevTokenError("SUPABASE_JWT_SECRET is not set: dev tokens are signed with it (HS256)")
    if not settings.supabase_url:
        raise DevTokenError("SUPABASE_URL is not set: it decides the token issuer the API checks")
    if not 0 < ttl_seconds <= 24 * 3600:
        raise DevTokenError("the token lifetime must be between 1 second and 24 hours")
    now = int(time.time())
    claims = {
        "sub": identity_to_uuid(identity, settings.identity_namespace),
        "aud": settings.supabase_jwt_audience,
        "iss": supabase_issuer(settings.supabase_url),
        "role": USER_ROLE,
        "iat": now,
        "exp": now + ttl_seconds,
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    if "@" in identity:
        claims["email"] = identity
    return jwt.encode(claims, settings.supabase_jwt_secret.get_secret_value(), algorithm="HS256")
