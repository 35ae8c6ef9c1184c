"""Fixtures for HTTP tests: the real app under uvicorn on a loopback port, a fake Supabase
(JWKS + Storage) and a fake OpenAI-compatible server on loopback, and token minting.

The server runs in the test's own event loop, so tests can reach the very store the
app uses (`running.services.store`) to seed data or check what a request wrote.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from api import create_app
from api.services import Services
from memory.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.http.fake_supabase import FakeSupabase

HS256_SECRET = "super-secret-jwt-token-with-at-least-32-characters"
DROP = object()  # mint(..., claim=DROP) removes a claim


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algo = jwt.algorithms.ECAlgorithm if self.algorithm == "ES256" else jwt.algorithms.RSAAlgorithm
        data: dict[str, Any] = algo.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


@dataclass(frozen=True)
class Keys:
    ec: SigningKey
    rsa: SigningKey
    ec_next: SigningKey  # not published at first: rotation / wrong-signature cases


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        ec=SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
        rsa=SigningKey("rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ec_next=SigningKey("ec-2", "ES256", ec.generate_private_key(ec.SECP256R1())),
    )


@pytest.fixture
async def supabase(keys: Keys) -> AsyncIterator[FakeSupabase]:
    fake = FakeSupabase(jwks=[keys.ec.jwk, keys.rsa.jwk])
    await fake.start()
    try:
        yield fake
    finally:
        await fake.aclose()


class Script:
    """Scripted answers for the fake OpenAI server: queued steps, then plain text."""

    def __init__(self) -> None:
        self.steps: list[Callable[[dict[str, Any]], list[dict[str, Any]]] | list[dict[str, Any]]] = []
        self.default_text = "Hello from the fake model."

    def __call__(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if self.steps:
            step = self.steps.pop(0)
            return step(body) if callable(step) else step
        return [{"text": self.default_text}]


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(responder=Script())
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()


@dataclass
class Tokens:
    """Mints Supabase-style access tokens for the fake project."""

    issuer: str
    keys: Keys

    def claims(self, user_id: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "aud": "authenticated",
            "iss": self.issuer,
            "role": "authenticated",
            "iat": now,
            "exp": now + 600,
            "email": f"{user_id[:8]}@example.com",
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not DROP}

    def mint(self, user_id: str, *, key: SigningKey | None = None, kid: str | None = None, **overrides: Any) -> str:
        key = key or self.keys.ec
        return jwt.encode(
            self.claims(user_id, **overrides), key.private, algorithm=key.algorithm, headers={"kid": kid or key.kid}
        )

    def mint_hs256(self, user_id: str, secret: str | bytes = HS256_SECRET, **overrides: Any) -> str:
        return jwt.encode(self.claims(user_id, **overrides), secret, algorithm="HS256")


@pytest.fixture
def tokens(supabase: FakeSupabase, keys: Keys) -> Tokens:
    return Tokens(issuer=f"{supabase.url}/auth/v1", keys=keys)


@dataclass
class RunningApp:
    app: FastAPI
    base_url: str
    client: httpx.AsyncClient
    settings: Settings
    users: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def chatkit(self, token: str, payload: dict[str, Any] | bytes, **kwargs: Any) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {**self.auth(token), "Content-Type": "application/json"}
        return await self.client.post("/chatkit", content=body, headers=headers, **kwargs)


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON events of a ChatKit `text/event-stream` response."""
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def make_settings(tmp_path: Path, supabase: FakeSupabase, llm: FakeOpenAIServer | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store_url": "memory://",
        "supabase_url": supabase.url,
        "supabase_jwt_secret": HS256_SECRET,
        "supabase_service_role_key": supabase.service_key,
        "files_url": f"file://{tmp_path / 'files'}",
        "openai_api_key": "sk-test-not-real" if llm else None,
        "openai_base_url": llm.base_url if llm else None,
        "llm_model": "fake-model",
        "memory_capture": "tools",  # these tests script the chat model's remember/forget calls
        "max_request_bytes": 256 * 1024,
        "max_upload_bytes": 1024 * 1024,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[RunningApp]:
    """Run `create_app(settings)` under uvicorn on a free loopback port until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    if "public_base_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_base_url": base_url})
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 15 s")
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield RunningApp(app, base_url, client, settings)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
        sock.close()


@pytest.fixture
def settings_factory(tmp_path: Path, supabase: FakeSupabase, llm: FakeOpenAIServer) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        return make_settings(tmp_path, supabase, llm, **overrides)

    return factory


@pytest.fixture
async def api(settings_factory: Callable[..., Settings]) -> AsyncIterator[RunningApp]:
    """The app with the in-process store, local files, HS256 allowed and the fake LLM."""
    async with serve(settings_factory()) as running:
        yield running


def new_user() -> str:
    return str(uuid.uuid4())


def user_message(text: str, attachments: list[str] | None = None) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachments or [],
        "inference_options": {},
    }


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat-completions message whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""
