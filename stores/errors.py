"""Store errors and the URL redaction every error message goes through."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_PASSWORD_PARAM_RE = re.compile(r"(?i)((?:password|passwd|pwd|secret|token|apikey|api_key)=)[^&\s]+")


class StoreError(Exception):
    """Base class of the errors stores raise on purpose."""


class StoreUnavailableError(StoreError):
    """The backend cannot be reached (at open time or during an operation)."""


def redact_url(url: str) -> str:
    """The URL with any password (userinfo or query parameter) replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostinfo}" if ":" in userinfo else f"{user}@{hostinfo}"
    query = _PASSWORD_PARAM_RE.sub(r"\1***", parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """Remove the URL's password from an arbitrary message (driver errors sometimes echo it)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return text.replace(url, redact_url(url))
