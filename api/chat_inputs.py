"""What the chat model is given for an attachment: the image itself, a small text file's text.

Images go in as `input_image` data URLs (the model server need not reach this API or
Storage), text files as text, both within limits because the recent history, with its
attachments, is sent again on every turn. Anything else, anything too large and any
file that cannot be read (not uploaded yet, Storage down) becomes a one-line note, so
an attachment never breaks the chat.
"""

from __future__ import annotations

import base64
import logging
from typing import Protocol

from chatkit.types import Attachment
from openai.types.responses import ResponseInputContentParam, ResponseInputImageParam, ResponseInputTextParam

logger = logging.getLogger("memory_agent.api.chat")

MAX_INLINE_IMAGE_BYTES = 5 * 1024 * 1024
MAX_INLINE_TEXT_BYTES = 32 * 1024
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
TEXT_TYPES = frozenset({"application/json", "application/xml", "application/x-yaml"})


class ReadableFiles(Protocol):
    async def read(self, user_id: str, attachment_id: str, limit: int) -> bytes | None: ...


def _note(attachment: Attachment, why: str = "") -> ResponseInputTextParam:
    kind = "an image" if attachment.type == "image" else "a file"
    suffix = f"; {why}" if why else ""
    return ResponseInputTextParam(
        type="input_text", text=f"[The user attached {kind}: {attachment.name} ({attachment.mime_type}){suffix}]"
    )


def is_text(mime_type: str) -> bool:
    return mime_type.startswith("text/") or mime_type in TEXT_TYPES


class AttachmentInputs:
    """Turns one user's attachments into model input, reading the bytes from their file backend."""

    def __init__(self, files: object | None, user_id: str) -> None:
        self.files: ReadableFiles | None = files if callable(getattr(files, "read", None)) else None  # type: ignore[assignment]
        self.user_id = user_id

    async def content(self, attachment: Attachment) -> ResponseInputContentParam:
        mime = attachment.mime_type.lower()
        if self.files is None or not (mime in IMAGE_TYPES or is_text(mime)):
            return _note(attachment)
        limit = MAX_INLINE_IMAGE_BYTES if mime in IMAGE_TYPES else MAX_INLINE_TEXT_BYTES
        try:
            data = await self.files.read(self.user_id, attachment.id, limit)
        except Exception as exc:  # a preview backend outage must not fail the turn
            logger.warning("could not read attachment %s for the model (%s)", attachment.id, type(exc).__name__)
            return _note(attachment, "its content could not be read")
        if data is None:
            return _note(attachment, "it was not uploaded")
        if mime in IMAGE_TYPES:
            if len(data) > limit:
                return _note(attachment, f"too large to show the model (over {limit // (1024 * 1024)} MB)")
            encoded = base64.b64encode(data).decode()
            return ResponseInputImageParam(type="input_image", detail="auto", image_url=f"data:{mime};base64,{encoded}")
        text = data[:limit].decode("utf-8", errors="replace")
        more = " (truncated: only the first 32 KB are shown)" if len(data) > limit else ""
        return ResponseInputTextParam(
            type="input_text", text=f"[The user attached the file {attachment.name}{more}:]\n{text}"
        )
