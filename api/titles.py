"""A title for a chat thread after its first exchange, from the user's first words (no model call).

A model call would cost a request and a delay on every new thread; the first words
of the message are what ChatKit's own sidebar would show anyway.
"""

from __future__ import annotations

from chatkit.types import UserMessageItem, UserMessageTextContent

from api.text import clean_display_name

MAX_TITLE_WORDS = 8
MAX_TITLE_CHARS = 60


def thread_title(message: UserMessageItem | None) -> str | None:
    """The title for a thread that starts with `message`; None when it has nothing to name it by."""
    if message is None:
        return None
    text = " ".join(part.text for part in message.content if isinstance(part, UserMessageTextContent))
    words = clean_display_name(text).split()
    if not words:
        names = [clean_display_name(a.name) for a in message.attachments]
        words = [name for name in names if name][:3]
        if not words:
            return None
    title = " ".join(words[:MAX_TITLE_WORDS])
    truncated = len(words) > MAX_TITLE_WORDS
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0] or title[: MAX_TITLE_CHARS - 1]
        truncated = True
    return title + "…" if truncated else title
