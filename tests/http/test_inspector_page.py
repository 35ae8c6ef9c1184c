"""Serving the inspector page and its development sign-in (HTTP level; the browser tests drive the page)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from api import create_app
from api.devlogin import DevLoginRefused, is_local_url
from memory.identity import identity_to_uuid
from memory.settings import Settings
from tests.fixtures.postgres_servers import free_port
from tests.http.api_process import served_api
from tests.http.conftest import RunningApp, Tokens, new_user, serve
from tests.http.test_cli import env as cli_env


async def test_the_page_and_its_files_are_served_without_sign_in(api: RunningApp) -> None:
    page = await api.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Memory inspector" in page.text and "/inspector/app.js" in page.text
    script = await api.client.get("/inspector/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert (await api.client.get("/inspector/app.css")).headers["content-type"].startswith("text/css")
    assert (await api.client.get("/inspector/secrets.py")).status_code == 404
    assert (await api.client.get("/inspector/..%2F..%2Fsettings.py")).status_code == 404


async def test_the_browser_libraries_come_from_npm_ci(api: RunningApp) -> None:
    livekit = await api.client.get("/inspector/vendor/livekit-client.js")
    assert livekit.status_code == 200, livekit.text  # installed by scripts/setup.sh (npm ci in api/inspector)
    assert "LivekitClient" in livekit.text[:2000]
    supabase = await api.client.get("/inspector/vendor/supabase.js")
    assert supabase.status_code == 200 and supabase.text.startswith("var supabase=")
    assert (await api.client.get("/inspector/vendor/left-pad.js")).status_code == 404


async def test_config_tells_the_page_how_to_sign_in(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(supabase_anon_key="anon-public-key")
    async with serve(settings) as app:
        config = (await app.client.get("/inspector-config")).json()
    assert config == {
        "supabase_url": settings.supabase_url,
        "supabase_anon_key": "anon-public-key",
        "dev_login": False,
        "voice": False,
    }
    assert "jwt" not in str(config).lower()


async def test_dev_login_is_off_by_default(api: RunningApp) -> None:
    response = await api.client.post("/dev-login", json={})
    assert response.status_code == 404 and "API_DEV_LOGIN" in response.json()["detail"]


async def test_dev_login_gives_a_token_the_api_accepts(settings_factory: Callable[..., Settings]) -> None:
    async with serve(settings_factory(api_dev_login=True)) as app:
        login = await app.client.post("/dev-login", json={"identity": "ada@localhost"})
        assert login.status_code == 200
        body = login.json()
        assert body["user_id"] == identity_to_uuid("ada@localhost")
        me = await app.client.get("/me", headers=app.auth(body["access_token"]))
        assert me.status_code == 200 and me.json()["user_id"] == body["user_id"]
        assert me.json()["email"] == "ada@localhost"
        default = (await app.client.post("/dev-login")).json()
        assert default["user_id"] == identity_to_uuid("developer@localhost")
        bad = await app.client.post("/dev-login", json={"identity": ""})
        assert bad.status_code == 400 and "identity" in bad.json()["detail"]


async def test_dev_login_works_without_any_supabase_settings(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(api_dev_login=True, supabase_url=None, supabase_jwt_secret=None)
    async with serve(settings) as app:
        token = (await app.client.post("/dev-login", json={})).json()["access_token"]
        assert (await app.client.get("/me", headers=app.auth(token))).status_code == 200


async def test_dev_login_does_not_weaken_real_tokens(settings_factory: Callable[..., Settings], tokens: Tokens) -> None:
    async with serve(settings_factory(api_dev_login=True)) as app:
        user = new_user()
        assert (await app.client.get("/me", headers=app.auth(tokens.mint(user)))).json()["user_id"] == user
        forged = tokens.mint_hs256(user, secret="some-other-secret-of-at-least-32-characters!")
        assert (await app.client.get("/me", headers=app.auth(forged))).status_code == 401


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"supabase_url": "https://abcd.supabase.co"}, "SUPABASE_URL"),
        ({"supabase_url": "http://10.0.0.5:54321"}, "SUPABASE_URL"),
        ({"public_base_url": "https://memory.example.com"}, "PUBLIC_BASE_URL"),
    ],
)
def test_dev_login_is_refused_outside_local_development(
    settings_factory: Callable[..., Settings], overrides: dict[str, str], where: str
) -> None:
    with pytest.raises(DevLoginRefused, match=where):
        create_app(settings_factory(api_dev_login=True, **overrides))
    create_app(settings_factory(api_dev_login=False, **overrides))  # without the dev login all is fine


def test_local_urls() -> None:
    for url in ["http://127.0.0.1:54321", "http://localhost:8000", "http://[::1]:80", "http://api.localhost"]:
        assert is_local_url(url), url
    for url in ["https://x.supabase.co", "http://192.168.1.2", "http://localhost.evil.com", "not a url"]:
        assert not is_local_url(url), url


async def test_the_page_only_talks_to_the_api_supabase_and_livekit(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(
        livekit_url="wss://demo.livekit.cloud", livekit_api_key="k", livekit_api_secret="s" * 32
    )
    async with serve(settings) as app:
        page = await app.client.get("/")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"].split() == [
        "'self'",
        settings.supabase_url,
        "wss://demo.livekit.cloud",
        "https://demo.livekit.cloud",
    ]
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_the_documented_local_run_serves_the_page_with_the_dev_login(tmp_path: Path) -> None:
    """`API_DEV_LOGIN=true python -m api` with nothing else configured (docs/inspector.md)."""
    async with served_api(cli_env(API_DEV_LOGIN="true"), tmp_path) as api:
        page = await api.client.get("/")
        assert page.status_code == 200 and "Memory inspector" in page.text
        token = (await api.client.post("/dev-login", json={})).json()["access_token"]
        me = await api.client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["user_id"] == identity_to_uuid("developer@localhost")
    assert api.returncode == 0, api.output
    assert api.output.count("API_DEV_LOGIN is on") == 1
    assert (tmp_path / "data" / "memory-agent.db").exists()  # the default embedded store


async def test_python_m_api_refuses_the_dev_login_for_a_real_project(tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api", "serve", "--port", str(free_port())],
        env=cli_env(API_DEV_LOGIN="true", SUPABASE_URL="https://abcd.supabase.co"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "API_DEV_LOGIN=true is refused because SUPABASE_URL is not a local address" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before touching the store
