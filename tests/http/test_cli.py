"""`python -m api token ...` mints dev tokens the API accepts; `python -m api serve` serves on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import jwt

from memory import identity_to_uuid
from tests.fixtures.postgres_servers import free_port
from tests.http.api_process import served_api
from tests.http.conftest import HS256_SECRET, RunningApp
from tests.http.fake_supabase import FakeSupabase

ROOT = Path(__file__).resolve().parents[2]


def env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "OPENAI_", "LIVEKIT_", "STORE_"))}
    return {**base, "PYTHONPATH": str(ROOT), **values}


async def run_cli(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_dev_token_is_accepted_by_the_api(api: RunningApp, supabase: FakeSupabase) -> None:
    result = await run_cli(
        "token", "alice@example.com", environment=env(SUPABASE_URL=supabase.url, SUPABASE_JWT_SECRET=HS256_SECRET)
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    claims = jwt.decode(token, HS256_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == identity_to_uuid("alice@example.com")
    assert claims["email"] == "alice@example.com" and 0 < claims["exp"] - claims["iat"] <= 3600
    assert token not in result.stderr
    response = await api.client.get("/me/export", headers=api.auth(token))
    assert response.status_code == 200 and response.json()["user_id"] == claims["sub"]

    uuid_user = "0b5c8a7e-3f6d-4c1e-9a2b-7d8e9f0a1b2c"
    result = await run_cli(
        "token", uuid_user, "--ttl", "60", environment=env(SUPABASE_URL=supabase.url, SUPABASE_JWT_SECRET=HS256_SECRET)
    )
    assert jwt.decode(result.stdout.strip(), options={"verify_signature": False})["sub"] == uuid_user


async def test_dev_token_needs_the_secret_and_url() -> None:
    result = await run_cli("token", "bob", environment=env(SUPABASE_URL="https://x.supabase.co"))
    assert result.returncode == 2 and result.stdout == ""
    assert "SUPABASE_JWT_SECRET" in result.stderr
    result = await run_cli("token", "bob", environment=env(SUPABASE_JWT_SECRET=HS256_SECRET))
    assert result.returncode == 2 and "SUPABASE_URL" in result.stderr
    result = await run_cli(
        "token", "   ", environment=env(SUPABASE_URL="https://x.supabase.co", SUPABASE_JWT_SECRET=HS256_SECRET)
    )
    assert result.returncode == 2 and "identity" in result.stderr


async def test_python_m_api_serves_and_stops_cleanly(tmp_path: Path) -> None:
    environment = env(
        STORE_URL=f"sqlite:///{tmp_path / 'store.db'}",
        FILES_URL=f"file://{tmp_path / 'files'}",
        SUPABASE_URL="https://example.supabase.co",
    )
    async with served_api(environment, tmp_path) as api:
        response = await api.client.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert (await api.client.get("/me/export")).status_code == 401
    assert api.returncode == 0, api.output
    assert (tmp_path / "files").is_dir()


async def test_python_m_api_serve_refuses_to_start_without_an_issuer(tmp_path: Path) -> None:
    store = {"STORE_URL": f"sqlite:///{tmp_path / 'store.db'}", "FILES_URL": f"file://{tmp_path / 'files'}"}
    for bad in ({}, {"SUPABASE_URL": "   "}, {"SUPABASE_URL": "example.supabase.co"}):
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "api", "serve", "--port", str(free_port())],
            env=env(**store, **bad),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (bad, result.stderr)
        assert "SUPABASE_URL" in result.stderr and "https://<ref>.supabase.co" in result.stderr
    assert not (tmp_path / "store.db").exists()  # refused before touching the store
