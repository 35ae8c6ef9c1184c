"""The SQLite store facade: one file, the three facets, whole-user erase."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractAsyncContextManager

from stores.base import UserStore
from stores.errors import redact_url
from stores.sqlite.changes import SqliteChangeFeed
from stores.sqlite.database import Database
from stores.sqlite.memories import SqliteMemoryStore, SqliteProfileStore
from stores.sqlite.schema import USER_TABLES
from stores.sqlite.threads import SqliteThreadStore

_LIST_USERS = " UNION ".join(
    f"SELECT {column} FROM {table}" for table, column in USER_TABLES if table != "items"
)  # an item always has its thread


class SqliteStore(UserStore):
    """Everything in one SQLite file (WAL mode); survives restarts with zero set-up."""

    def __init__(self, url: str, db: Database) -> None:
        self.url = redact_url(url)
        self.path = db.path
        self._db = db
        self.threads = SqliteThreadStore(db)
        self.memories = SqliteMemoryStore(db)
        self.profiles = SqliteProfileStore(db)
        self._use_changes(SqliteChangeFeed(db))

    async def _forget_user(self, user_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for table, column in USER_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (user_id,))

        await self._db.write(work, erase=True)

    def erasing_in_bulk(self) -> AbstractAsyncContextManager[None]:
        return self._db.erasing_in_bulk()

    async def _list_users(self) -> list[str]:
        rows = await self._db.fetch_all(_LIST_USERS)
        return [row[0] for row in rows]

    async def ping(self) -> None:
        await self._db.fetch_one("SELECT 1")

    async def _close(self) -> None:
        await self._db.close()
