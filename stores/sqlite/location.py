"""Turn a `sqlite:///...` URL into a database file path and make room for it.

Three slashes mean a path relative to the working directory
(`sqlite:///./data/memory-agent.db`), four an absolute one (`sqlite:////srv/db.sqlite`).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from stores.errors import StoreError, StoreUnavailableError

DEFAULT_BUSY_TIMEOUT_MS = 10_000
MAX_BUSY_TIMEOUT_MS = 600_000
_FORMS = "sqlite:///relative/path.db or sqlite:////absolute/path.db"


@dataclass(frozen=True)
class SqliteLocation:
    """Where the database lives and how long a writer waits for the file lock."""

    path: Path
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS


def parse_url(url: str) -> SqliteLocation:
    """The location named by a sqlite URL; ValueError saying how to write it otherwise."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        raise ValueError(f"not a sqlite URL: {url[:200]!r}; use {_FORMS}")
    rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        raise ValueError(f"sqlite URL {url[:200]!r} names a host; use three slashes: {_FORMS}")
    raw = unquote(rest[1:])
    if raw == ":memory:":
        raise ValueError("sqlite:///:memory: is not supported; use STORE_URL=memory:// for a store without a file")
    if not raw or raw.endswith("/") or "\x00" in raw:
        raise ValueError(f"sqlite URL {url[:200]!r} names no database file; use {_FORMS}")
    return SqliteLocation(Path(raw), _busy_timeout(query))


def _busy_timeout(query: str) -> int:
    busy_timeout_ms = DEFAULT_BUSY_TIMEOUT_MS
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "busy_timeout_ms":
            raise ValueError(f"unknown sqlite URL parameter {name[:40]!r}; the only one is busy_timeout_ms")
        if not value.isdigit() or not 0 <= int(value) <= MAX_BUSY_TIMEOUT_MS:
            raise ValueError(f"busy_timeout_ms must be a whole number of milliseconds, 0-{MAX_BUSY_TIMEOUT_MS}")
        busy_timeout_ms = int(value)
    return busy_timeout_ms


def prepare(path: Path) -> Path:
    """The absolute database path, its directory created; blocking, so call it in a worker thread."""
    absolute = Path(os.path.abspath(path))
    if absolute.is_dir():
        raise StoreError(
            f"the SQLite store path {absolute} is a directory; point STORE_URL at a file inside it, "
            f"e.g. sqlite:///{absolute / 'memory-agent.db'}"
        )
    try:
        absolute.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if isinstance(exc, FileExistsError | NotADirectoryError) else exc.strerror
        # a path this process may never write is a wrong STORE_URL, not an outage: never fall back
        configuration = isinstance(exc, FileExistsError | NotADirectoryError | PermissionError) or (
            exc.errno == errno.EROFS
        )
        error = StoreError if configuration else StoreUnavailableError
        raise error(
            f"cannot create the directory {absolute.parent} for the SQLite store {absolute} "
            f"({reason or type(exc).__name__}); choose a location in STORE_URL that this process may write to"
        ) from None
    return absolute
