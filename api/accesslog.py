"""Keep working signed links out of the access log.

A signed preview or upload link is a credential on its own for up to
FILES_URL_TTL_SECONDS; uvicorn's access log prints full request targets, so the
`sig` query parameter is replaced before the line is written.
"""

from __future__ import annotations

import logging
import re

_SIGNATURE = re.compile(r"([?&]sig=)[^&\s\"]*", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_signatures(text: str) -> str:
    return _SIGNATURE.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSignatures(logging.Filter):
    """Rewrites `sig=...` in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_signatures(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_signatures(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_access_log_redaction() -> None:
    """Add the filter to uvicorn's access logger once (idempotent)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())
