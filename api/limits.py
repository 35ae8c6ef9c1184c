"""Limits on what one ChatKit message may carry.

A stored message is fed back to the model on every later turn of its thread, so
one oversized request would cost on every turn after it: attachments are
de-duplicated and capped, text parts capped in number and total length, and
attachment names cleaned of control/bidi characters before anything is stored.
"""

from __future__ import annotations

from typing import Any

from chatkit.types import AttachmentsCreateReq, UserMessageTagContent, UserMessageTextContent

from api.text import clean_display_name

MAX_ATTACHMENTS = 10
MAX_CONTENT_PARTS = 20
MAX_INPUT_TEXT_CHARS = 20_000
MAX_QUOTED_TEXT_CHARS = 4_000


def apply_input_limits(request: Any) -> None:
    """De-duplicate attachments and clean names in place; ValueError (-> 400) naming the limit otherwise."""
    if isinstance(request, AttachmentsCreateReq):
        name = clean_display_name(request.params.name)
        if not name:
            raise ValueError("the attachment name is empty once control characters are removed; give the file a name")
        request.params.name = name
        return
    message = getattr(getattr(request, "params", None), "input", None)
    if message is None or not hasattr(message, "attachments"):
        return
    unique = list(dict.fromkeys(message.attachments))
    if len(unique) > MAX_ATTACHMENTS:
        raise ValueError(
            f"a message can carry at most {MAX_ATTACHMENTS} attachments (this one has {len(unique)}); "
            "send the rest in another message"
        )
    message.attachments = unique
    if len(message.content) > MAX_CONTENT_PARTS:
        raise ValueError(f"a message can have at most {MAX_CONTENT_PARTS} content parts ({len(message.content)} sent)")
    total = sum(
        len(part.text) for part in message.content if isinstance(part, UserMessageTextContent | UserMessageTagContent)
    )
    if total > MAX_INPUT_TEXT_CHARS:
        raise ValueError(
            f"the message text is {total} characters; the limit is {MAX_INPUT_TEXT_CHARS}: "
            "send a shorter message or attach the text as a file"
        )
    if message.quoted_text is not None and len(message.quoted_text) > MAX_QUOTED_TEXT_CHARS:
        raise ValueError(f"the quoted text is longer than {MAX_QUOTED_TEXT_CHARS} characters; quote less")
