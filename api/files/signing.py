"""Short-lived HMAC-signed URLs for attachment bytes on the local backend.

An `<img>` tag cannot send an Authorization header, so preview links carry their
own proof: an HMAC over what they grant and when they expire. They are made fresh
on every read and never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time


class UrlSigner:
    """Signs and checks `(purpose, fields..., expiry)` tuples."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def sign(self, purpose: str, *fields: str, expires: int) -> str:
        message = "\n".join((purpose, *fields, str(expires))).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, signature: str, purpose: str, *fields: str, expires: int, now: float | None = None) -> bool:
        """True if the signature matches and has not expired."""
        if expires < (time.time() if now is None else now):
            return False
        # compare bytes: compare_digest(str, str) raises TypeError on non-ASCII input (a 500 for anyone)
        expected = self.sign(purpose, *fields, expires=expires).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))
