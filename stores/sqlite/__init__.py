"""The SQLite backend (`sqlite:///path/to.db`): the embedded default store.

One database file in WAL mode, reached through aiosqlite (worker threads, so the
event loop never blocks); the schema is created and migrated on open.
"""

from __future__ import annotations

import asyncio

from memory.settings import Settings
from stores.sqlite.database import Database
from stores.sqlite.location import parse_url, prepare
from stores.sqlite.store import SqliteStore


async def open(url: str, settings: Settings) -> SqliteStore:
    """Open (creating if needed) the database file named by `url`.

    `sqlite:///./data/memory-agent.db` is relative to the working directory,
    `sqlite:////srv/memory.db` absolute. An unusable path raises
    StoreError (StoreUnavailableError when it may be temporary) naming the file.
    """
    location = parse_url(url)
    path = await asyncio.to_thread(prepare, location.path)
    return SqliteStore(url, await Database.open(path, location.busy_timeout_ms, settings.store_op_timeout))


__all__ = ["SqliteStore", "open"]
