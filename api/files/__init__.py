"""Concrete attachment blob backends behind `stores.files.FileStorage`, chosen by `FILES_URL`."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import urlsplit

from api.files.local import LocalFileStorage
from api.files.signing import UrlSigner
from api.files.supabase_storage import FileStorageError, SupabaseFileStorage
from memory.settings import Settings

logger = logging.getLogger("memory_agent.api.files")

FileBackend = LocalFileStorage | SupabaseFileStorage
FILES_URL_FORMS = "file://./data/files, file:///absolute/path, supabase://<bucket>"


def allowed_mime_types(settings: Settings) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in settings.allowed_upload_mime_types.split(",") if t.strip())


def local_root(files_url: str) -> Path:
    """`file://./data/files` -> ./data/files (relative to the working directory), `file:///srv/x` -> /srv/x."""
    rest = files_url[len("file://") :]
    if not rest or rest == "/":
        raise ValueError(f"FILES_URL {files_url!r} names no directory; use one of: {FILES_URL_FORMS}")
    return Path(rest)


def _signer(settings: Settings) -> UrlSigner:
    if settings.files_signing_key is None:
        logger.warning(
            "FILES_SIGNING_KEY is not set: signed upload and preview links work only in this process "
            "and stop working when it restarts; set it when running several API workers or replicas"
        )
        return UrlSigner()
    raw = settings.files_signing_key.get_secret_value().encode()
    try:
        decoded = base64.b64decode(raw, validate=True)
    except ValueError:
        decoded = b""
    return UrlSigner(decoded if len(decoded) >= 32 else raw)


async def open_file_storage(settings: Settings) -> FileBackend:
    """The blob backend `FILES_URL` names, ready to use; ValueError with the accepted forms otherwise."""
    url = settings.files_url.strip()
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    limits = allowed_mime_types(settings)
    if scheme == "file":
        storage = LocalFileStorage(
            local_root(url),
            base_url=settings.public_base_url,
            signer=_signer(settings),
            max_bytes=settings.max_upload_bytes,
            allowed_mime_types=limits,
            url_ttl_seconds=settings.files_url_ttl_seconds,
        )
        await storage.open()
        return storage
    if scheme == "supabase":
        bucket = url[len("supabase://") :].strip("/")
        if not bucket or "/" in bucket:
            raise ValueError(f"FILES_URL {url!r} names no bucket; use supabase://<bucket>")
        if not settings.supabase_url or settings.supabase_service_role_key is None:
            raise ValueError("FILES_URL=supabase://... needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY")
        return await SupabaseFileStorage.connect(
            settings.supabase_url,
            settings.supabase_service_role_key.get_secret_value(),
            bucket,
            max_bytes=settings.max_upload_bytes,
            allowed_mime_types=limits,
            url_ttl_seconds=settings.files_url_ttl_seconds,
        )
    raise ValueError(f"unsupported FILES_URL {url!r}; use one of: {FILES_URL_FORMS}")


async def close_file_storage(storage: FileBackend) -> None:
    if isinstance(storage, SupabaseFileStorage):
        await storage.aclose()


__all__ = [
    "FileBackend",
    "FileStorageError",
    "LocalFileStorage",
    "SupabaseFileStorage",
    "close_file_storage",
    "open_file_storage",
]
