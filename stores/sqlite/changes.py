"""The SQLite change feed: a `changes` table, polled cheaply with `PRAGMA data_version`.

Several processes may share one database file, so a change is a row (channel =
digest of the user id, payload without user data). Each store that has subscribers
runs one poller on its own read-only connection: `PRAGMA data_version` changes when
any other connection commits, which costs no table read, so an idle poll is a few
microseconds; only then are the new rows read (`seq > last seen`). Rows older than
`RETENTION_S` are pruned by publishers.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

import aiosqlite

from stores.changes import Change, ChangeFeed, cancel_task, channel_digest
from stores.sqlite.database import Database

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05  # while someone listens; an idle poll does no table read
RETENTION_S = 600.0  # a poller stalled longer than this resyncs its subscribers
_BATCH = 500


class SqliteChangeFeed(ChangeFeed):
    kind = "SQLite"

    def __init__(self, db: Database, poll_interval: float = POLL_INTERVAL_S) -> None:
        super().__init__()
        self._db = db
        self._busy_timeout_ms = db.busy_timeout_ms
        self._poll_interval = poll_interval
        self._digests: dict[str, str] = {}  # channel digest -> user id, for users with subscribers
        self._task: asyncio.Task[None] | None = None

    async def _send(self, change: Change) -> None:
        row = (channel_digest(change.user_id), change.payload(), time.time())

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO changes (channel, payload, at) VALUES (?, ?, ?)", row)
            conn.execute("DELETE FROM changes WHERE at < ?", (row[2] - RETENTION_S,))

        await self._db.write(work)

    def _listen(self, user_id: str) -> None:
        self._digests[channel_digest(user_id)] = user_id
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="sqlite-change-poller")

    def _unlisten(self, user_id: str) -> None:
        self._digests.pop(channel_digest(user_id), None)
        if not self._digests and self._task is not None:
            self._task.cancel()  # nobody listens: no polling
            self._task = None

    async def _stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    async def _poll(self) -> None:
        """Follow the table until cancelled; reopen the connection (and resync) after an error."""
        backoff = 0.1
        while True:
            conn: aiosqlite.Connection | None = None
            try:
                conn = await aiosqlite.connect(
                    self._db.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None
                )
                await conn.execute("PRAGMA query_only = ON")
                await self._follow(conn)
            except asyncio.CancelledError:
                raise
            except (sqlite3.Error, OSError, ValueError) as exc:
                self._set_all_listening(False)
                logger.warning(
                    "the SQLite change poller of %s failed (%s); retrying in %.1fs", self._db.path, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
            finally:
                if conn is not None:
                    try:
                        await asyncio.shield(conn.close())
                    except Exception as exc:  # closing must not hide the reason we stopped
                        logger.debug("closing the SQLite change poller failed: %s", exc)

    async def _follow(self, conn: aiosqlite.Connection) -> None:
        last_seq = int((await _one(conn, "SELECT COALESCE(MAX(seq), 0) FROM changes"))[0])
        version = (await _one(conn, "PRAGMA data_version"))[0]
        last_read = time.monotonic()
        while True:
            # everyone subscribed so far: any commit from now on has a seq above `last_seq`
            for user_id in list(self._digests.values()):
                if not self._is_listening(user_id):
                    self._set_listening(user_id, True)
            await asyncio.sleep(self._poll_interval)
            now_version = (await _one(conn, "PRAGMA data_version"))[0]
            if now_version == version and time.monotonic() - last_read < RETENTION_S / 2:
                continue
            version = now_version
            if time.monotonic() - last_read > RETENTION_S:
                self._set_all_listening(False)  # rows we never read may have been pruned: resync
            last_read = time.monotonic()
            while True:
                rows = list(
                    await conn.execute_fetchall(
                        "SELECT seq, channel, payload FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                        (last_seq, _BATCH),
                    )
                )
                for seq, channel, payload in rows:
                    last_seq = max(last_seq, int(seq))
                    follower = self._digests.get(channel)
                    if follower is not None:
                        self._deliver(follower, Change.from_payload(follower, payload))
                if len(rows) < _BATCH:
                    break


async def _one(conn: aiosqlite.Connection, sql: str) -> Any:
    cursor = await conn.execute(sql)
    try:
        row = await cursor.fetchone()
    finally:
        await cursor.close()
    if row is None:
        raise sqlite3.DatabaseError(f"no row from {sql}")
    return row
