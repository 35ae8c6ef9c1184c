"""Everything the app opens at startup and closes at shutdown, in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from agents import Model, OpenAIChatCompletionsModel
from openai import AsyncOpenAI

from api.auth import TokenVerifier, supabase_issuer
from api.chat import MemoryChatServer
from api.chat_capture import ChatCaptures
from api.files import FileBackend, close_file_storage, open_file_storage
from api.jwks import JwksCache
from capture import capture_client
from memory.settings import Settings
from stores import UserStore, open_store

logger = logging.getLogger("memory_agent.api")

CAPTURE_FLUSH_TIMEOUT = 5.0  # pending chat captures get this long at shutdown


@dataclass
class Services:
    settings: Settings
    store: UserStore
    files: FileBackend
    verifier: TokenVerifier
    chat: MemoryChatServer
    http: httpx.AsyncClient
    openai: AsyncOpenAI | None


def jwks_url(settings: Settings) -> str | None:
    """SUPABASE_JWKS_URL, else derived from SUPABASE_URL, else None."""
    if settings.supabase_jwks_url:
        return settings.supabase_jwks_url
    if settings.supabase_url:
        return supabase_issuer(settings.supabase_url) + "/.well-known/jwks.json"
    return None


def build_model(settings: Settings) -> tuple[AsyncOpenAI | None, Model | None]:
    """The chat-completions model from OPENAI_* settings; (None, None) when nothing is configured."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if not key and not settings.openai_base_url:
        logger.warning("OPENAI_API_KEY is not set: chat messages will get a 'not configured' error")
        return None, None
    # a keyless OpenAI-compatible server (Ollama, vLLM) still needs some key string
    client = AsyncOpenAI(api_key=key or "not-needed", base_url=settings.openai_base_url)
    return client, OpenAIChatCompletionsModel(model=settings.llm_model, openai_client=client)


MIN_HMAC_SECRET_BYTES = 32  # RFC 7518: an HS256 key at least as long as the hash


def warn_short_livekit_secret(settings: Settings) -> None:
    """One clear warning for a short LiveKit secret (instead of PyJWT's on every token)."""
    secret = settings.livekit_api_secret.get_secret_value() if settings.livekit_api_secret else ""
    if secret and len(secret.encode()) < MIN_HMAC_SECRET_BYTES:
        logger.warning(
            "LIVEKIT_API_SECRET is shorter than %d bytes: fine for `livekit-server --dev` on your machine, "
            "unsafe anywhere else; give the server a long key pair, e.g. "
            'LIVEKIT_KEYS="devkey: $(openssl rand -hex 32)" livekit-server --dev, and set the same secret here',
            MIN_HMAC_SECRET_BYTES,
        )


async def start_services(settings: Settings) -> Services:
    """Open the store, the blob backend and the HTTP clients; undo what was opened if a step fails."""
    if not settings.supabase_url:
        logger.warning("SUPABASE_URL is not set: every authenticated request will be refused with 401")
    store = await open_store(settings.store_url, settings=settings)
    try:
        files = await open_file_storage(settings)
    except BaseException:
        await store.aclose()
        raise
    store.threads.files = files
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    url = jwks_url(settings)
    verifier = TokenVerifier(settings, JwksCache(url, http) if url else None)
    warn_short_livekit_secret(settings)
    openai_client, model = build_model(settings)
    client = capture_client(settings)
    captures = ChatCaptures(store, client) if client is not None else None
    chat = MemoryChatServer(store, model, capture_mode=settings.memory_capture, captures=captures)
    logger.info("API ready: store %s, files %s", store.url, settings.files_url)
    return Services(settings, store, files, verifier, chat, http, openai_client)


async def stop_services(services: Services) -> None:
    """Close everything opened by `start_services` (each step even if an earlier one fails)."""
    try:
        await services.chat.aclose(CAPTURE_FLUSH_TIMEOUT)
        if services.openai is not None:
            await services.openai.close()
        await services.http.aclose()
        await close_file_storage(services.files)
    finally:
        await services.store.aclose()
