"""Supabase access tokens over real HTTP: every case of the checklist in design/supabase.md."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from api.auth import UNAUTHORIZED_DETAIL
from api.jwks import JwksCache
from memory.settings import Settings
from tests.http.conftest import DROP, HS256_SECRET, Keys, RunningApp, Tokens, new_user, serve
from tests.http.fake_supabase import FakeSupabase

LIST_THREADS = {"type": "threads.list", "params": {"limit": 5}}


def assert_refused(response: httpx.Response) -> None:
    """Every refusal looks the same: 401, `WWW-Authenticate: Bearer`, one generic message."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {"detail": UNAUTHORIZED_DETAIL}


async def call(api: RunningApp, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await api.client.post("/chatkit", json=LIST_THREADS, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tamper(token: str, **changes: Any) -> str:
    """The same header and signature around a modified payload."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return ".".join([header, b64(json.dumps(claims).encode()), signature])


async def test_valid_es256_rs256_and_hs256_tokens_are_accepted(api: RunningApp, tokens: Tokens, keys: Keys) -> None:
    user = new_user()
    for token in (
        tokens.mint(user, key=keys.ec),
        tokens.mint(user, key=keys.rsa),
        tokens.mint_hs256(user),
        tokens.mint(user.upper()),  # Supabase never does this, but the UUID is the same user
    ):
        response = await call(api, token)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == []


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "expired_beyond_leeway",
        "not_yet_valid_nbf",
        "issued_in_the_future",
        "wrong_audience",
        "wrong_issuer",
        "missing_sub",
        "non_uuid_sub",
        "missing_exp",
        "missing_iat",
        "missing_role",
        "role_service_role_with_sub",
        "role_anon_with_sub",
    ],
)
async def test_claim_checks(api: RunningApp, tokens: Tokens, case: str) -> None:
    now = int(time.time())
    user = new_user()
    cases: dict[str, dict[str, Any]] = {
        "expired": {"iat": now - 3600, "exp": now - 600},
        "expired_beyond_leeway": {"iat": now - 3600, "exp": now - 45},
        "not_yet_valid_nbf": {"nbf": now + 300},
        "issued_in_the_future": {"iat": now + 300, "exp": now + 900},
        "wrong_audience": {"aud": "anon"},
        "wrong_issuer": {"iss": "https://other-project.supabase.co/auth/v1"},
        "missing_sub": {"sub": DROP},
        "non_uuid_sub": {"sub": "alice@example.com"},
        "missing_exp": {"exp": DROP},
        "missing_iat": {"iat": DROP},
        "missing_role": {"role": DROP},
        "role_service_role_with_sub": {"role": "service_role"},
        "role_anon_with_sub": {"role": "anon"},
    }
    overrides = cases[case]
    assert_refused(await call(api, tokens.mint(user, **overrides)))
    assert_refused(await call(api, tokens.mint_hs256(user, **overrides)))


async def test_small_clock_skew_is_tolerated(api: RunningApp, tokens: Tokens) -> None:
    now = int(time.time())
    response = await call(api, tokens.mint(new_user(), iat=now - 600, exp=now - 10))
    assert response.status_code == 200, response.text


async def test_legacy_anon_and_service_role_api_keys_never_pass_as_a_user(api: RunningApp, tokens: Tokens) -> None:
    now = int(time.time())
    for role in ("anon", "service_role"):
        key = jwt.encode(
            {"iss": "supabase", "ref": "abcdefghijklmnop", "role": role, "iat": now, "exp": now + 3600},
            HS256_SECRET,
            algorithm="HS256",
        )
        assert_refused(await call(api, key))
        # even with our issuer and audience, a key without a user is refused
        key = jwt.encode(
            {"iss": tokens.issuer, "aud": "authenticated", "role": role, "iat": now, "exp": now + 3600},
            HS256_SECRET,
            algorithm="HS256",
        )
        assert_refused(await call(api, key))


async def test_forged_and_malformed_tokens(api: RunningApp, tokens: Tokens, keys: Keys) -> None:
    victim = new_user()
    good = tokens.mint(new_user())
    cases = {
        "tampered payload": tamper(good, sub=victim),
        "tampered role": tamper(tokens.mint(new_user(), role="anon"), role="authenticated"),
        "wrong signature (another key, published kid)": tokens.mint(victim, key=keys.ec_next, kid=keys.ec.kid),
        "alg none": jwt.encode(tokens.claims(victim), None, algorithm="none"),  # type: ignore[arg-type]
        "alg none with kid": b64(json.dumps({"alg": "none", "typ": "JWT", "kid": keys.ec.kid}).encode())
        + "."
        + b64(json.dumps(tokens.claims(victim)).encode())
        + ".",
        "HS256 with the secret of another project": tokens.mint_hs256(victim, secret="x" * 40),
        "ES256 token naming the RSA key id": jwt.encode(
            tokens.claims(victim), keys.ec.private, algorithm="ES256", headers={"kid": keys.rsa.kid}
        ),
        "RS256 claimed for the EC key id": jwt.encode(
            tokens.claims(victim), keys.rsa.private, algorithm="RS256", headers={"kid": keys.ec.kid}
        ),
        "HS384": jwt.encode(tokens.claims(victim), HS256_SECRET, algorithm="HS384"),
        "alg as a list": b64(json.dumps({"alg": ["ES256"], "typ": "JWT", "kid": keys.ec.kid}).encode())
        + "."
        + b64(json.dumps(tokens.claims(victim)).encode())
        + ".c2ln",
        "alg as an object": b64(json.dumps({"alg": {"x": 1}, "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps(tokens.claims(victim)).encode())
        + ".c2ln",
        "garbage": "not-a-token",
        "three dots of garbage": "a.b.c",
        "empty segments": "..",
    }
    for name, token in cases.items():
        response = await call(api, token)
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        assert_refused(response)


async def test_hs256_signed_with_the_public_key_is_refused(api: RunningApp, tokens: Tokens, keys: Keys) -> None:
    """Algorithm confusion: the JWKS public key must never be used as an HMAC secret."""
    for key in (keys.ec, keys.rsa):
        pem = key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
        payload = json.dumps(tokens.claims(new_user())).encode()
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}".encode()
        for secret in (pem, json.dumps(key.jwk).encode()):
            signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
            assert_refused(await call(api, f"{signing_input.decode()}.{b64(signature)}"))


async def test_missing_or_malformed_authorization_header(api: RunningApp, tokens: Tokens) -> None:
    token = tokens.mint(new_user())
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": token},
        {"Authorization": f"Bearer {token} extra"},
    ):
        assert_refused(await api.client.post("/chatkit", json=LIST_THREADS, headers=headers))
    for method, path in (("GET", "/me/export"), ("DELETE", "/me"), ("POST", "/livekit/token")):
        assert_refused(await api.client.request(method, path))


async def test_authentication_happens_before_the_body_is_read(api: RunningApp) -> None:
    """An anonymous client sending a huge body gets 401, not 413 (the body is never read)."""
    too_big = b"x" * (api.settings.max_request_bytes * 4)
    response = await api.client.post("/chatkit", content=too_big, headers={"Content-Type": "application/json"})
    assert_refused(response)


async def test_hs256_is_refused_when_no_secret_is_configured(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    async with serve(settings_factory(supabase_jwt_secret=None)) as api:
        assert_refused(await call(api, tokens.mint_hs256(new_user())))
        assert (await call(api, tokens.mint(new_user()))).status_code == 200


async def test_everything_is_refused_without_supabase_url(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    async with serve(settings_factory(supabase_url=None)) as api:
        assert_refused(await call(api, tokens.mint_hs256(new_user())))


async def test_unknown_kid_refetches_at_most_once_per_cooldown_then_rotation_works(
    api: RunningApp, tokens: Tokens, keys: Keys, supabase: FakeSupabase
) -> None:
    clock = [1000.0]
    jwks = JwksCache(api.services.verifier.jwks.url, api.services.http, clock=lambda: clock[0])  # type: ignore[union-attr]
    api.services.verifier.jwks = jwks
    hits = supabase.jwks_hits
    user = new_user()

    assert (await call(api, tokens.mint(user))).status_code == 200
    assert supabase.jwks_hits == hits + 1

    # Supabase rotates: a new key appears. Within the cooldown unknown kids cause no fetch at all.
    supabase.jwks.append(keys.ec_next.jwk)
    clock[0] += 5
    for _ in range(20):
        assert_refused(await call(api, tokens.mint(user, key=keys.ec_next)))
        assert_refused(await call(api, tokens.mint(user, kid="attacker-kid")))
    assert supabase.jwks_hits == hits + 1

    # after the cooldown one refetch picks the new key up
    clock[0] += 30
    assert (await call(api, tokens.mint(user, key=keys.ec_next))).status_code == 200
    assert supabase.jwks_hits == hits + 2
    clock[0] += 1
    assert_refused(await call(api, tokens.mint(user, kid="attacker-kid")))
    assert (await call(api, tokens.mint(user, key=keys.ec))).status_code == 200
    assert supabase.jwks_hits == hits + 2

    # the old key is withdrawn: within 10 minutes the cache expires and it stops working
    supabase.jwks[:] = [keys.ec_next.jwk]
    clock[0] += 600
    assert_refused(await call(api, tokens.mint(user, key=keys.ec)))
    assert (await call(api, tokens.mint(user, key=keys.ec_next))).status_code == 200
    assert supabase.jwks_hits == hits + 3


async def test_concurrent_unknown_kids_cause_a_single_fetch(
    api: RunningApp, tokens: Tokens, supabase: FakeSupabase
) -> None:

    hits = supabase.jwks_hits
    results = await asyncio.gather(*(call(api, tokens.mint(new_user(), kid=f"bogus-{i}")) for i in range(10)))
    for response in results:
        assert_refused(response)
    assert supabase.jwks_hits == hits + 1


async def test_unreachable_jwks_fails_closed(settings_factory: Callable[..., Settings], tokens: Tokens) -> None:
    async with serve(settings_factory(supabase_jwks_url="http://127.0.0.1:9/jwks.json")) as api:
        assert_refused(await call(api, tokens.mint(new_user())))
        # HS256 tokens do not need the JWKS and keep working
        assert (await call(api, tokens.mint_hs256(new_user()))).status_code == 200


async def test_tokens_never_appear_in_logs(api: RunningApp, tokens: Tokens, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    good, bad = tokens.mint(new_user()), tokens.mint(new_user(), aud="nope")
    await call(api, good)
    await call(api, bad)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert good not in text and bad not in text
    assert good.split(".")[2] not in text and bad.split(".")[2] not in text


async def test_an_unusable_key_in_the_jwks_does_not_break_the_others(
    api: RunningApp, tokens: Tokens, keys: Keys, supabase: FakeSupabase
) -> None:
    broken = {"kty": "EC", "crv": "P-256", "kid": "broken", "alg": "ES256", "use": "sig", "x": "AA", "y": "AA"}
    supabase.jwks.insert(0, broken)
    user = new_user()
    assert (await call(api, tokens.mint(user))).status_code == 200  # the good EC key still verifies
    refused = await call(api, tokens.mint(user, kid="broken"))
    assert refused.status_code == 401
    assert_refused(refused)
