"""The interface the thread store uses for attachment bytes (two-phase upload).

Concrete blob backends (local directory, Supabase Storage) live with the HTTP API;
the store only needs to ask for an upload target and to delete bytes.
"""

from __future__ import annotations

from typing import Protocol

from chatkit.types import AttachmentUploadDescriptor


class FileStorage(Protocol):
    """Where attachment bytes live, under `<user_id>/<attachment_id>`."""

    max_bytes: int
    allowed_mime_types: frozenset[str]

    async def upload_descriptor(
        self, user_id: str, attachment_id: str, mime_type: str, size: int
    ) -> AttachmentUploadDescriptor:
        """Where and how the client uploads the bytes (URL, method, headers)."""
        ...

    async def preview_url(self, user_id: str, attachment_id: str) -> str:
        """A URL to show an image; for signed URLs, made fresh on each call and never stored."""
        ...

    async def delete(self, user_id: str, attachment_id: str) -> None:
        """Delete one object; a missing object is not an error."""
        ...

    async def delete_user(self, user_id: str) -> None:
        """Delete every object of a user."""
        ...
