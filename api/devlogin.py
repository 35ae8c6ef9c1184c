"""API_DEV_LOGIN: a one-click local identity for the inspector page, never on a real Supabase project.

With SUPABASE_URL empty the app signs its own dev tokens: the issuer becomes
PUBLIC_BASE_URL (or http://localhost) and the HS256 secret a random per-process value (unless
SUPABASE_JWT_SECRET is set), so `API_DEV_LOGIN=true python -m api` works alone.
With SUPABASE_URL pointing at a local Supabase (`supabase start`) its secret is used.
Any other SUPABASE_URL makes the app refuse to start: a dev login there would let
anybody mint tokens for a production project's users.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from urllib.parse import urlsplit

from pydantic import SecretStr

from memory.settings import Settings

logger = logging.getLogger("memory_agent.api")

LOCAL_NAMES = {"localhost", "host.docker.internal"}
DEV_ISSUER_BASE = "http://localhost"  # token issuer base when neither SUPABASE_URL nor PUBLIC_BASE_URL is set


class DevLoginRefused(ValueError):
    """API_DEV_LOGIN=true with a non-local SUPABASE_URL."""


def is_local_url(url: str) -> bool:
    """True for http(s) URLs on a loopback address, `localhost` or `*.localhost`."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare_dev_login(settings: Settings, *, warn: bool = True) -> Settings:
    """`settings` ready for dev tokens (unchanged when API_DEV_LOGIN is off); DevLoginRefused if unsafe.

    Idempotent: prepared settings come back unchanged.
    """
    if not settings.api_dev_login:
        return settings
    if settings.supabase_url and not is_local_url(settings.supabase_url):
        raise DevLoginRefused(
            "API_DEV_LOGIN=true is refused because SUPABASE_URL is not a local address: "
            "unset API_DEV_LOGIN for a real Supabase project, or leave SUPABASE_URL empty for local development"
        )
    if settings.public_base_url and not is_local_url(settings.public_base_url):
        raise DevLoginRefused(
            "API_DEV_LOGIN=true is refused because PUBLIC_BASE_URL is not a local address: it is for development only"
        )
    if warn:
        logger.warning(
            "API_DEV_LOGIN is on: whoever reaches this server can sign in as any identity (development only)"
        )
    update: dict[str, object] = {}
    if not settings.supabase_url:
        update["supabase_url"] = (settings.public_base_url or DEV_ISSUER_BASE).rstrip("/")
    if settings.supabase_jwt_secret is None or not settings.supabase_jwt_secret.get_secret_value():
        update["supabase_jwt_secret"] = SecretStr(secrets.token_urlsafe(48))
    return settings.model_copy(update=update) if update else settings
