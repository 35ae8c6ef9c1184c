"""Store errors and the URL redaction every error message goes through."""

from __future__ import annotations

import re
from urllib.parse import unquote

_PASSWORD_PARAM_RE = re.compile(r"(?i)((?:password|passwd|pwd|secret|token|apikey|api_key)=)[^&\s]+")
# Characters that end the host part of a URL: a password holding one of them unencoded
# hides its own `@` from urlsplit, which then sees no credentials at all.
_URL_DELIMITERS = ("/", "?", "#")
PERCENT_ENCODE_HINT = (
    "if the password (or user name) contains special characters, percent-encode them "
    "(/ as %2F, ? as %3F, # as %23, @ as %40, : as %3A, % as %25)"
)


class StoreError(Exception):
    """Base class of the errors stores raise on purpose."""


class StoreUnavailableError(StoreError):
    """The backend cannot be reached (at open time or during an operation)."""


class StoreTimeoutError(StoreUnavailableError):
    """One operation did not finish within STORE_OP_TIMEOUT: the server hangs (or is far too slow).

    Its connection was discarded, so a late answer can never reach another call.
    """


def timeout_error(what: str, timeout: float) -> StoreTimeoutError:
    """The one "did not answer in time" error every backend raises (`what` names the store, URL redacted)."""
    return StoreTimeoutError(
        f"the {what} did not answer within STORE_OP_TIMEOUT={timeout:g}s; the connection was dropped. "
        "Check that the server is running and not overloaded or paused, or raise STORE_OP_TIMEOUT"
    )


class StoreClosedError(StoreError):
    """The store was closed with `aclose()`: a programming error, not an outage."""


def closed_error(what: str) -> StoreClosedError:
    """The one "store is closed" error every backend raises (`what` names the store, URL redacted)."""
    return StoreClosedError(f"the {what} is closed; open a new one with open_store()")


def _credentials(url: str) -> tuple[str, str, str | None, str] | None:
    """(`scheme://`, user, password or None, `@host...`) when the URL carries credentials.

    Splits at the LAST `@` after `://`, not where urlsplit would: a password with an
    unencoded `/`, `?` or `#` ends urlsplit's netloc before its `@`. That can also read
    an `@` in a query value as the end of credentials; masking too much is the safe side.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, hostinfo = rest.rpartition("@")
    if not at:
        return None
    user, colon, password = userinfo.partition(":")
    return scheme + sep, user, password if colon else None, at + hostinfo


def redact_url(url: str) -> str:
    """The URL with any password (userinfo or query parameter) replaced by `***`."""
    found = _credentials(url)
    if found is not None:
        prefix, user, password, hostinfo = found
        url = f"{prefix}{user}:***{hostinfo}" if password is not None else url
    return _PASSWORD_PARAM_RE.sub(r"\1***", url)


def url_password(url: str) -> str | None:
    """The password as written in the URL (percent-encoding kept), or None."""
    found = _credentials(url)
    return found[2] if found is not None and found[2] else None


def has_unencoded_credentials(url: str) -> bool:
    """True when the password (or user) holds a `/`, `?` or `#` that should be percent-encoded.

    Every URL parser (urlsplit, libpq, redis-py) ends the host part at the first of
    those, so such a URL means something else to it than the user meant: parsers
    reject it with PERCENT_ENCODE_HINT. (An `@` in a query value of a URL that also has
    a `:` before it reads the same way; it must be encoded as %40 then.)
    """
    found = _credentials(url)
    if found is None:
        return False
    _, user, password, _ = found
    return password is not None and any(ch in user + password for ch in _URL_DELIMITERS)


def scrub(text: str, url: str) -> str:
    """Remove the URL's password from an arbitrary message (driver errors sometimes echo it)."""
    text = text.replace(url, redact_url(url))
    password = url_password(url)
    if password:
        for form in {password, unquote(password)}:
            text = text.replace(form, "***")
    return text
