"""All configuration in one place, read from the environment (and `.env`, `.env.local`).

Every edge (agent worker, HTTP API, store CLI) builds its objects from these
settings so a deployment is configured by environment variables alone.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

CaptureMode = Literal["background", "tools", "off"]


class Settings(BaseSettings):
    """Environment-driven settings; names match `.env.example`."""

    # `.env.local` (what `lk app env -w` writes) is read after `.env`, so its values win
    model_config = SettingsConfigDict(
        env_file=(".env", ".env.local"), extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    # storage
    store_url: str = "sqlite:///./data/memory-agent.db"
    store_fallback: Literal["", "memory"] = ""
    store_connect_timeout: float = Field(default=5.0, gt=0)
    store_op_timeout: float = Field(default=5.0, gt=0)  # deadline of one store operation (hung server)
    store_thread_ttl_seconds: int | None = Field(default=None, gt=0)
    store_migrate_on_open: bool = True
    store_rls: Literal["auto", "on", "off"] = "auto"
    store_require_durable: bool = False  # Redis: refuse a server that keeps nothing on disk
    store_erase_vacuum: bool = False  # Postgres: VACUUM the store tables right after forget_user
    memory_retention_days: int | None = Field(default=None, gt=0)  # forget memories not updated for N days
    transcript_retention_days: int | None = Field(default=None, gt=0)  # delete voice-call threads older than N days
    retention_sweep_interval_seconds: float = Field(default=3600.0, gt=0)  # how often the API process sweeps

    # memory capture and consent (docs/capture.md)
    memory_default_enabled: bool = True  # consent switch of new profiles
    memory_capture: CaptureMode = "background"
    memory_capture_model: str = "gpt-4.1-mini"
    memory_capture_timeout: float = Field(default=10.0, gt=0)  # seconds per capture request

    # identity
    identity_namespace: uuid.UUID = uuid.NAMESPACE_DNS

    # agent
    agent_name: str = "memory-agent"
    recall_budget_ms: float = Field(default=50.0, gt=0)
    memory_cache_limit: int = Field(default=2000, gt=0)  # memories a voice call holds in process (newest + name)
    llm_model: str = "gpt-4o-mini"
    stt_model: str = "gpt-4o-mini-transcribe"
    tts_model: str = "gpt-4o-mini-tts"
    tts_voice: str = "ash"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    # LiveKit
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: SecretStr | None = None

    # Supabase / HTTP API
    supabase_url: str | None = None
    supabase_jwks_url: str | None = None
    supabase_jwt_secret: SecretStr | None = None
    supabase_jwt_audience: str = "authenticated"
    supabase_service_role_key: SecretStr | None = None
    supabase_anon_key: str | None = None  # public "anon" key: the inspector page signs in with supabase-js
    files_url: str = "file://./data/files"
    files_signing_key: SecretStr | None = None  # HMAC key for signed local file links (random per process if unset)
    files_url_ttl_seconds: int = Field(default=900, gt=0, le=86400)  # lifetime of signed upload/preview URLs
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    allowed_upload_mime_types: str = "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain"
    max_request_bytes: int = Field(default=1024 * 1024, gt=0)
    public_base_url: str | None = None  # how browsers reach the API; unset = taken from each request
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_cors_origins: str = ""  # comma-separated browser origins allowed to call the API, e.g. http://localhost:5173
    api_dev_login: bool = False  # one-click local identity on the inspector page; refused unless SUPABASE_URL is local


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call `get_settings.cache_clear()`)."""
    return Settings()
