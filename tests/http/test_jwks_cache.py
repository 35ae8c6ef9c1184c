"""The JWKS cache on its own: which keys it accepts, how long it keeps them, how often it fetches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from api.jwks import JwksCache
from tests.http.conftest import Keys, SigningKey
from tests.http.fake_supabase import FakeSupabase


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def jwks_url(supabase: FakeSupabase) -> str:
    return f"{supabase.url}/auth/v1/.well-known/jwks.json"


async def test_only_signing_keys_of_allowed_types_are_used(
    supabase: FakeSupabase, keys: Keys, http: httpx.AsyncClient
) -> None:
    p384 = SigningKey("p384", "ES256", ec.generate_private_key(ec.SECP384R1())).jwk
    supabase.jwks[:] = [
        {**keys.ec.jwk, "kid": "enc", "use": "enc"},
        {**keys.ec.jwk, "kid": "mislabelled", "alg": "RS256"},
        {**p384, "crv": "P-384", "alg": "ES384"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
        {"kid": "junk"},
        "not-a-key",  # type: ignore[list-item]
        keys.ec.jwk,
        keys.rsa.jwk,
    ]
    cache = JwksCache(jwks_url(supabase), http)
    assert (await cache.get(keys.ec.kid)) is not None
    assert (await cache.get(keys.rsa.kid)) is not None
    for kid in ("enc", "mislabelled", "p384", "hmac", "junk"):
        assert await cache.get(kid) is None
    assert cache.fetches == 1  # the unknown kids above fell within the cooldown


async def test_ttl_and_cooldown_cannot_be_configured_past_the_limits(
    supabase: FakeSupabase, keys: Keys, http: httpx.AsyncClient
) -> None:
    clock = [0.0]
    cache = JwksCache(jwks_url(supabase), http, ttl=3600, cooldown=1, clock=lambda: clock[0])
    assert await cache.get(keys.ec.kid) is not None
    clock[0] = 10
    assert await cache.get("other") is None and cache.fetches == 1  # cooldown is at least 30 s
    clock[0] = 599
    assert await cache.get(keys.ec.kid) is not None and cache.fetches == 1
    clock[0] = 601
    assert await cache.get(keys.ec.kid) is not None and cache.fetches == 2  # kept at most 10 minutes


async def test_a_failed_fetch_fails_closed_and_is_not_retried_at_once(http: httpx.AsyncClient, keys: Keys) -> None:
    clock = [0.0]
    cache = JwksCache("http://127.0.0.1:9/jwks.json", http, clock=lambda: clock[0])
    assert await cache.get(keys.ec.kid) is None
    assert await cache.get(keys.ec.kid) is None
    assert cache.fetches == 1
    clock[0] = 31
    assert await cache.get(keys.ec.kid) is None
    assert cache.fetches == 2
