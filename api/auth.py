"""Supabase access-token verification and the FastAPI dependency that yields the signed-in user.

Follows the checklist in docs/http-api.md ("Authentication"): ES256/RS256 through the project JWKS,
HS256 only with a configured secret, no algorithm confusion, `aud`/`iss`/`role`/
`sub` checked, a small leeway, and one uniform 401 that reveals nothing about why.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from jwt.exceptions import InvalidTokenError

from api.jwks import KEY_TYPES, JwksCache
from memory.settings import Settings

logger = logging.getLogger("memory_agent.api.auth")

LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "role"]
USER_ROLE = "authenticated"
UNAUTHORIZED_DETAIL = "missing or invalid access token: sign in again and send 'Authorization: Bearer <token>'"


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """The verified Supabase user of one request."""

    user_id: str  # the token's `sub`, canonical lower-case UUID
    email: str | None
    role: str
    session_id: str | None


class InvalidToken(Exception):
    """Why a token was refused (logged at debug level only, never sent to the client)."""


def supabase_issuer(supabase_url: str) -> str:
    """`https://<ref>.supabase.co` -> `https://<ref>.supabase.co/auth/v1` (the `iss` claim)."""
    return supabase_url.rstrip("/") + "/auth/v1"


def auth_config_problem(settings: Settings) -> str | None:
    """What is missing for the API to verify any user's token, naming what to set (None when ready).

    Without an issuer every request would be a 401: refuse to start instead, like the agent CLI.
    """
    url = (settings.supabase_url or "").strip()
    if not url:
        return (
            "SUPABASE_URL is not set: the API verifies Supabase access tokens against that project's issuer "
            "(<SUPABASE_URL>/auth/v1) and signing keys (JWKS). Set SUPABASE_URL=https://<ref>.supabase.co "
            "(Supabase dashboard -> Project Settings -> API); for HS256 projects or local dev tokens also set "
            "SUPABASE_JWT_SECRET. Local development without Supabase: SUPABASE_URL=http://127.0.0.1:54321 and "
            "SUPABASE_JWT_SECRET=<32+ random characters>, then `python -m api token you@example.com`."
        )
    if not url.startswith(("https://", "http://")):
        return f"SUPABASE_URL must be an http(s) URL such as https://<ref>.supabase.co (got {url[:40]!r})"
    return None


class TokenVerifier:
    """Verifies Supabase access tokens; one instance per app (it owns the JWKS cache)."""

    def __init__(self, settings: Settings, jwks: JwksCache | None) -> None:
        self.issuer = supabase_issuer(settings.supabase_url) if settings.supabase_url else None
        self.audience = settings.supabase_jwt_audience
        secret = settings.supabase_jwt_secret.get_secret_value() if settings.supabase_jwt_secret else ""
        self._hs256_secret = secret.encode() if secret else None
        self.jwks = jwks

    async def verify(self, token: str) -> AuthenticatedUser:
        """The user the token was issued to; `InvalidToken` for anything else."""
        if self.issuer is None:
            raise InvalidToken("SUPABASE_URL is not configured")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError as exc:
            raise InvalidToken("unparseable token") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            raise InvalidToken("alg is not a string")
        key: Any
        if algorithm in KEY_TYPES:
            kid = header.get("kid")
            if self.jwks is None or not isinstance(kid, str):
                raise InvalidToken("no JWKS or no kid")
            jwk = await self.jwks.get(kid)
            if jwk is None:
                raise InvalidToken("unknown kid")
            if jwk.algorithm_name != algorithm:
                raise InvalidToken("token algorithm does not match the key")
            key = jwk.key
        elif algorithm == "HS256" and self._hs256_secret is not None:
            key = self._hs256_secret
        else:
            raise InvalidToken("algorithm not allowed")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except InvalidTokenError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        return _user_from_claims(claims)


def _user_from_claims(claims: dict[str, Any]) -> AuthenticatedUser:
    if claims.get("role") != USER_ROLE:
        raise InvalidToken("role is not 'authenticated'")  # anon / service_role keys end here
    subject = claims.get("sub")
    if not isinstance(subject, str):
        raise InvalidToken("sub is not a string")
    try:
        user_id = str(uuid.UUID(subject))
    except ValueError:
        raise InvalidToken("sub is not a UUID") from None
    if user_id != subject.lower():
        raise InvalidToken("sub is not a canonical UUID")
    email = claims.get("email")
    session_id = claims.get("session_id")
    return AuthenticatedUser(
        user_id=user_id,
        email=email if isinstance(email, str) and email else None,
        role=USER_ROLE,
        session_id=session_id if isinstance(session_id, str) and session_id else None,
    )


def unauthorized() -> HTTPException:
    """The one 401 every authentication failure gets."""
    return HTTPException(status_code=401, detail=UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"})


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


async def current_user(request: Request) -> AuthenticatedUser:
    """FastAPI dependency: the verified user, or 401 before the request body is read."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized()
    verifier: TokenVerifier = request.app.state.services.verifier
    try:
        return await verifier.verify(token)
    except InvalidToken as exc:
        logger.debug("rejected an access token: %s", exc)
        raise unauthorized() from None


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
"""Route parameter type: `user: CurrentUser` authenticates before the body is read."""
