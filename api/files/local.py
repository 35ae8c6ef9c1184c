"""Attachment bytes in a local directory (`FILES_URL=file://./data/files`), the embedded default.

Objects live at `<root>/<user_id>/<attachment_id>`. Clients upload through the
presigned `/files/{id}/upload` links of this API and show images through
short-lived signed `/files/{id}/content` links. File I/O runs in worker threads so
the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

from chatkit.store import NotFoundError
from chatkit.types import AttachmentUploadDescriptor

from api.baseurl import request_base_url
from api.files.signing import UrlSigner
from stores.ids import validate_object_id, validate_user_id

ERASED_DURING_UPLOAD = "the attachment was deleted while its bytes were uploading; create it again"


class UploadTooLarge(Exception):
    """More bytes arrived than the attachment was created for."""


class LocalFileStorage:
    """`stores.files.FileStorage` on the local file system."""

    def __init__(
        self,
        root: Path,
        *,
        base_url: str | None,
        signer: UrlSigner,
        max_bytes: int,
        allowed_mime_types: frozenset[str],
        url_ttl_seconds: int,
    ) -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/") if base_url else None
        self.signer = signer
        self.max_bytes = max_bytes
        self.allowed_mime_types = allowed_mime_types
        self.url_ttl_seconds = url_ttl_seconds

    async def open(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def path(self, user_id: str, attachment_id: str) -> Path:
        """Where the bytes live; ids are validated so no path can leave the user's directory."""
        return self.root / validate_user_id(user_id) / validate_object_id(attachment_id, "attachment id")

    def _base_url(self) -> str:
        """PUBLIC_BASE_URL when set, else the base URL of the request being served."""
        base = self.base_url or request_base_url()
        if base is None:
            raise RuntimeError("no PUBLIC_BASE_URL and no HTTP request to derive links from; set PUBLIC_BASE_URL")
        return base

    # -- FileStorage ----------------------------------------------------------
    async def upload_descriptor(
        self, user_id: str, attachment_id: str, mime_type: str, size: int
    ) -> AttachmentUploadDescriptor:
        expires = int(time.time()) + self.url_ttl_seconds
        signature = self.signer.sign("upload", user_id, attachment_id, str(size), mime_type, expires=expires)
        query = urlencode(
            {"u": validate_user_id(user_id), "size": size, "mime": mime_type, "exp": expires, "sig": signature}
        )
        url = f"{self._base_url()}/files/{validate_object_id(attachment_id, 'attachment id')}/upload?{query}"
        return AttachmentUploadDescriptor(url=url, method="POST", headers={})  # type: ignore[arg-type]

    async def preview_url(self, user_id: str, attachment_id: str) -> str:
        expires = int(time.time()) + self.url_ttl_seconds
        signature = self.signer.sign("content", user_id, attachment_id, expires=expires)
        query = urlencode({"u": validate_user_id(user_id), "exp": expires, "sig": signature})
        return f"{self._base_url()}/files/{validate_object_id(attachment_id, 'attachment id')}/content?{query}"

    async def delete(self, user_id: str, attachment_id: str) -> None:
        path = self.path(user_id, attachment_id)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def delete_user(self, user_id: str) -> None:
        directory = self.root / validate_user_id(user_id)
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)

    # -- used by the upload / content routes ------------------------------------
    def upload_allowed(
        self, user_id: str, attachment_id: str, size: int, mime_type: str, expires: int, signature: str
    ) -> bool:
        """True if the upload link was issued for exactly this user, attachment, size and type, and is live."""
        return self.signer.verify(signature, "upload", user_id, attachment_id, str(size), mime_type, expires=expires)

    def content_allowed(self, user_id: str, attachment_id: str, expires: int, signature: str) -> bool:
        return self.signer.verify(signature, "content", user_id, attachment_id, expires=expires)

    async def read(self, user_id: str, attachment_id: str, limit: int) -> bytes | None:
        """Up to `limit` + 1 bytes of the file (so a caller can tell it was longer), None if not uploaded."""

        def _read() -> bytes | None:
            try:
                with open(self.path(user_id, attachment_id), "rb") as handle:
                    return handle.read(limit + 1)
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(_read)

    async def exists(self, user_id: str, attachment_id: str) -> bool:
        return await asyncio.to_thread(self.path(user_id, attachment_id).is_file)

    async def write(self, user_id: str, attachment_id: str, chunks: AsyncIterator[bytes], *, limit: int) -> int:
        """Store the bytes atomically (temp file + rename); `UploadTooLarge` past `limit` bytes."""
        final = self.path(user_id, attachment_id)
        temp = final.parent / f".upload-{attachment_id}-{uuid.uuid4().hex}"
        try:
            await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
            handle = await asyncio.to_thread(open, temp, "wb")
        except FileNotFoundError:  # the user's directory was erased (DELETE /me) in between
            raise NotFoundError(ERASED_DURING_UPLOAD) from None
        written = 0
        try:
            try:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > limit:
                        raise UploadTooLarge(f"upload is larger than {limit} bytes")
                    await asyncio.to_thread(handle.write, chunk)
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, temp, final)
        except FileNotFoundError:  # DELETE /me removed the directory, temp file included, mid-upload
            await asyncio.to_thread(temp.unlink, missing_ok=True)
            raise NotFoundError(ERASED_DURING_UPLOAD) from None
        except BaseException:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
            raise
        return written
