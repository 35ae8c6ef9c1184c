"""`open_store(url)`: pick the backend from the URL scheme, connect, fail clearly."""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any, Protocol
from urllib.parse import urlsplit

from memory.settings import Settings, get_settings
from stores.base import UserStore
from stores.errors import StoreError, StoreUnavailableError, redact_url, scrub

logger = logging.getLogger(__name__)

# scheme -> module exposing `async def open(url: str, settings: Settings) -> UserStore`
_BACKENDS: dict[str, str] = {
    "memory": "stores.inprocess",
    "sqlite": "stores.sqlite",
    "redis": "stores.redis",
    "rediss": "stores.redis",
    "redis+cluster": "stores.redis",
    "rediss+cluster": "stores.redis",
    "postgresql": "stores.postgres",
    "postgres": "stores.postgres",
}
SUPPORTED_FORMS = (
    "memory://, sqlite:///path/to.db, redis://host:port/db, redis+cluster://host:port, "
    "postgresql://user:password@host:port/db"
)


class _Opener(Protocol):
    async def __call__(self, url: str, settings: Settings) -> UserStore: ...


def backend_module(url: str) -> Any:
    """The backend module for a store URL; ValueError naming the supported forms otherwise."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"STORE_URL {redact_url(str(url))!r} is not a URL; use one of: {SUPPORTED_FORMS}")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _BACKENDS:
        raise ValueError(f"unsupported store URL scheme {scheme!r}; use one of: {SUPPORTED_FORMS}")
    return importlib.import_module(_BACKENDS[scheme])


async def open_store(url: str | None = None, *, settings: Settings | None = None) -> UserStore:
    """Open the store at `url` (default: settings' STORE_URL) and check it answers.

    An unreachable backend raises StoreUnavailableError naming the redacted URL
    within STORE_CONNECT_TIMEOUT seconds, unless STORE_FALLBACK=memory is set.
    """
    settings = settings or get_settings()
    store = await _open(url or settings.store_url, settings)
    store.profiles.default_memory_enabled = settings.memory_default_enabled
    return store


async def _open(url: str, settings: Settings) -> UserStore:
    opener: _Opener = backend_module(url).open
    try:
        return await asyncio.wait_for(opener(url, settings), timeout=settings.store_connect_timeout)
    except (ValueError, StoreError) as exc:
        # misconfiguration (bad URL, failed migration, ...) always raises; only an outage may fall back
        if not isinstance(exc, StoreUnavailableError) or settings.store_fallback != "memory":
            raise
        reason = str(exc)
    except Exception as exc:  # driver errors differ per backend; all mean "cannot use this store"
        reason = scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, url)
        if settings.store_fallback != "memory":
            raise StoreUnavailableError(
                f"cannot open the store at {redact_url(url)} ({reason}); check that the server is running "
                "and STORE_URL is right, or set STORE_FALLBACK=memory to run without persistence"
            ) from None
    logger.warning(
        "STORE UNAVAILABLE at %s (%s): falling back to the in-process store because STORE_FALLBACK=memory. "
        "NOTHING WILL BE PERSISTED.",
        redact_url(url),
        reason,
    )
    from stores import inprocess

    return await inprocess.open("memory://", settings)


def startup_problem(settings: Settings) -> str | None:
    """Why the configured store cannot be opened (URL redacted), or None when it answers.

    For command-line entry points, before they start serving: a dead store would
    otherwise surface only when the first call or request arrives. Runs its own loop.
    """

    async def probe() -> None:
        store = await open_store(settings.store_url, settings=settings)
        await store.aclose()

    try:
        asyncio.run(probe())
    except (StoreError, ValueError) as exc:
        return str(exc)
    return None
