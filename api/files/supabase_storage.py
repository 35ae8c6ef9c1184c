"""Attachment bytes in a private Supabase Storage bucket (`FILES_URL=supabase://<bucket>`).

The server holds the service-role key and never switches the client's user
(supabase-py's async client shares its auth headers), so every object path is
built here from the already verified user id: `<user_id>/<attachment_id>`.
Clients upload straight to Storage with a signed upload URL; previews are signed
download URLs made fresh on each read and never stored.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from chatkit.types import AttachmentUploadDescriptor
from storage3.exceptions import StorageApiError, StorageException
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from stores.ids import validate_object_id, validate_user_id

logger = logging.getLogger("memory_agent.api.files")

LIST_PAGE = 1000
# a transparent 1x1 GIF: the preview of an image whose bytes are not uploaded yet
PENDING_PREVIEW = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


class FileStorageError(Exception):
    """The blob backend failed; the message is safe to show (no keys, no URLs with tokens)."""


def _failure(what: str, exc: Exception) -> FileStorageError:
    """Log the status (never the URL: it may hold a token) and return a safe error."""
    status = getattr(exc, "status", None) or getattr(getattr(exc, "response", None), "status_code", "")
    logger.warning("Supabase Storage %s failed (%s %s)", what, type(exc).__name__, status)
    return FileStorageError(f"file storage is unavailable ({what} failed); try again later")


def object_path(user_id: str, attachment_id: str) -> str:
    return f"{validate_user_id(user_id)}/{validate_object_id(attachment_id, 'attachment id')}"


class SupabaseFileStorage:
    """`stores.files.FileStorage` on Supabase Storage through supabase-py's async client."""

    def __init__(
        self,
        client: AsyncClient,
        bucket: str,
        *,
        http_client: httpx.AsyncClient,
        max_bytes: int,
        allowed_mime_types: frozenset[str],
        url_ttl_seconds: int,
    ) -> None:
        self._client = client
        self._http = http_client
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.allowed_mime_types = allowed_mime_types
        self.url_ttl_seconds = url_ttl_seconds
        self._policy_checked = False

    @classmethod
    async def connect(
        cls,
        supabase_url: str,
        service_role_key: str,
        bucket: str,
        *,
        max_bytes: int,
        allowed_mime_types: frozenset[str],
        url_ttl_seconds: int,
    ) -> SupabaseFileStorage:
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0), follow_redirects=False)
        options = AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False)
        client = await acreate_client(supabase_url, service_role_key, options=options)
        return cls(
            client,
            bucket,
            http_client=http,
            max_bytes=max_bytes,
            allowed_mime_types=allowed_mime_types,
            url_ttl_seconds=url_ttl_seconds,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _bucket(self) -> Any:
        return self._client.storage.from_(self.bucket)

    async def _call(self, what: str, operation: Any) -> Any:
        try:
            return await operation
        except (StorageException, httpx.HTTPError) as exc:
            raise _failure(what, exc) from None

    async def _ensure_bucket_policy(self) -> None:
        """Make Storage itself enforce our limits, once per process, before the first upload URL.

        A signed upload URL carries no size or type limit, so without this a client could
        declare 1 byte of image/png and then upload anything up to the project cap. A
        public bucket would let anyone who learns a path read the file: refuse to use it.
        """
        if self._policy_checked:
            return
        bucket = await self._call("bucket lookup", self._client.storage.get_bucket(self.bucket))
        if bucket.public:
            raise FileStorageError(
                f"the Supabase Storage bucket {self.bucket!r} is public: anyone who learns a file's path "
                "could read it; make the bucket private in the Supabase dashboard (Storage -> bucket settings)"
            )
        wanted_types = sorted(self.allowed_mime_types)
        if bucket.file_size_limit != self.max_bytes or sorted(bucket.allowed_mime_types or []) != wanted_types:
            options = {"public": False, "file_size_limit": self.max_bytes, "allowed_mime_types": wanted_types}
            await self._call("bucket update", self._client.storage.update_bucket(self.bucket, options))  # type: ignore[arg-type]
            logger.info(
                "Supabase Storage bucket %s now limits uploads to MAX_UPLOAD_BYTES and the allowed types", self.bucket
            )
        self._policy_checked = True

    # -- FileStorage ----------------------------------------------------------
    async def upload_descriptor(
        self, user_id: str, attachment_id: str, mime_type: str, size: int
    ) -> AttachmentUploadDescriptor:
        await self._ensure_bucket_policy()
        signed = await self._call(
            "signed upload URL", self._bucket().create_signed_upload_url(object_path(user_id, attachment_id))
        )
        return AttachmentUploadDescriptor(
            url=signed["signed_url"],
            method="PUT",
            headers={"Content-Type": mime_type, "x-upsert": "false"},
        )

    async def preview_url(self, user_id: str, attachment_id: str) -> str:
        """A fresh signed URL; the placeholder when there is nothing to show or Storage fails.

        A preview is cosmetic: a Storage outage must not make the threads that show
        images unreadable, so failures are logged and the placeholder is shown.
        """
        path = object_path(user_id, attachment_id)
        try:
            signed = await self._bucket().create_signed_url(path, self.url_ttl_seconds)
        except StorageApiError as exc:
            if str(exc.status) == "404" or exc.code in ("not_found", "NoSuchKey"):
                # Storage signs only existing objects; before the upload there is nothing to show yet
                return PENDING_PREVIEW
            _failure("signed URL", exc)
            return PENDING_PREVIEW
        except (StorageException, httpx.HTTPError) as exc:
            _failure("signed URL", exc)
            return PENDING_PREVIEW
        url = signed.get("signedURL") or signed.get("signedUrl")
        if not url:
            logger.warning("Supabase Storage returned no signed URL; check the bucket name in FILES_URL")
            return PENDING_PREVIEW
        return str(url)

    async def delete(self, user_id: str, attachment_id: str) -> None:
        await self._call("remove", self._bucket().remove([object_path(user_id, attachment_id)]))

    async def delete_user(self, user_id: str) -> None:
        prefix = validate_user_id(user_id)
        while True:
            entries = await self._call("list", self._bucket().list(prefix, {"limit": LIST_PAGE, "offset": 0}))
            names = [e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]
            if not names:
                return
            removed = await self._call("remove", self._bucket().remove([f"{prefix}/{name}" for name in names]))
            if len(names) < LIST_PAGE or not removed:
                return  # a full page that removed nothing would loop forever

    async def read(self, user_id: str, attachment_id: str, limit: int) -> bytes | None:
        """Up to `limit` + 1 bytes of the object through a signed URL, None if it does not exist."""
        url = await self.preview_url(user_id, attachment_id)
        if url == PENDING_PREVIEW:
            return None
        chunks: list[bytes] = []
        received = 0
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code == 404:
                    return None
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    received += len(chunk)
                    if received > limit:
                        break
        except httpx.HTTPError as exc:
            raise _failure("download", exc) from None
        return b"".join(chunks)[: limit + 1]

    # -- server-side writes (imports, tools) -------------------------------------
    async def upload(self, user_id: str, attachment_id: str, data: bytes, mime_type: str) -> None:
        """Store bytes from the server itself through a signed upload URL."""
        if len(data) > self.max_bytes:
            raise ValueError(f"file is larger than the limit of {self.max_bytes} bytes")
        path = object_path(user_id, attachment_id)
        signed = await self._call("signed upload URL", self._bucket().create_signed_upload_url(path))
        await self._call(
            "upload",
            self._bucket().upload_to_signed_url(path, signed["token"], data, {"content-type": mime_type}),
        )
