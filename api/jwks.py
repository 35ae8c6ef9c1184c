"""An async, rate-limited cache of the Supabase project's JSON Web Key Set.

PyJWT's `PyJWKClient` fetches synchronously (it would block the event loop), so the
keys are fetched with httpx. The set is kept at most `ttl` seconds, and an unknown
`kid` triggers at most one refetch per `cooldown` so forged tokens cannot make us
hammer Supabase.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import InvalidKeyError, PyJWKError

logger = logging.getLogger("memory_agent.api.jwks")

MAX_TTL_SECONDS = 600.0
MIN_COOLDOWN_SECONDS = 30.0
# key type each allowed asymmetric algorithm must use (a JWKS key is never an HMAC secret)
KEY_TYPES: dict[str, str] = {"ES256": "EC", "RS256": "RSA"}


class JwksCache:
    """`await get(kid)` -> the verification key for `kid`, or None if the project has no such key."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl: float = MAX_TTL_SECONDS,
        cooldown: float = MIN_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl = min(ttl, MAX_TTL_SECONDS)
        self._cooldown = max(cooldown, MIN_COOLDOWN_SECONDS)
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self, kid: str) -> PyJWK | None:
        if self._is_fresh(self._clock()) and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            # another request may have refreshed the set while this one waited for the lock
            now = self._clock()
            if self._is_fresh(now) and kid in self._keys:
                return self._keys[kid]
            if self._attempted_at is None or now - self._attempted_at >= self._cooldown:
                await self._refresh(now)
            return self._keys.get(kid) if self._is_fresh(self._clock()) else None

    def _is_fresh(self, now: float) -> bool:
        """Keys are used for at most `ttl` seconds after they were fetched."""
        return self._fetched_at is not None and now - self._fetched_at < self._ttl

    async def _refresh(self, now: float) -> None:
        self._attempted_at = now
        self.fetches += 1
        try:
            response = await self._client.get(self.url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("cannot fetch the Supabase JWKS from %s (%s)", self.url, type(exc).__name__)
            return
        self._keys = _parse_keys(document)
        self._fetched_at = now
        if not self._keys:
            logger.warning("the JWKS at %s has no usable ES256/RS256 signing keys", self.url)


def _parse_keys(document: Any) -> dict[str, PyJWK]:
    """Signing keys by kid; keys of other types, uses or algorithms are skipped."""
    keys: dict[str, PyJWK] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return keys
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        algorithm = entry.get("alg") or {"EC": "ES256", "RSA": "RS256"}.get(entry.get("kty", ""))
        if algorithm not in KEY_TYPES or KEY_TYPES[algorithm] != entry.get("kty"):
            continue
        if entry.get("kty") == "EC" and entry.get("crv") != "P-256":
            continue
        try:
            keys[entry["kid"]] = PyJWK(entry, algorithm=algorithm)
        except (PyJWKError, InvalidKeyError):  # one unusable key must not break every login
            logger.warning("skipping an unusable key (kid %r) in the Supabase JWKS", entry["kid"][:64])
            continue
    return keys
