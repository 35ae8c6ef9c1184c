"""The Postgres change feed: `pg_notify` through the pool, `LISTEN` on a dedicated connection.

The channel of a user is `ma_<digest of the user id>` (channel names are identifiers
of at most 63 bytes, and user ids need not be valid identifiers). Publishing runs
`select pg_notify(...)` on a pooled connection (works through any pooler). Listening
needs a session of its own, outside the pool: one connection per store (per process)
LISTENs to every followed user; it reads notifications in short waits and applies
LISTEN/UNLISTEN between them. A lost connection is reopened with back-off, channels
are listened again, and subscribers get a `resync`.

Supabase: LISTEN does not work through the transaction pooler (port 6543); point
STORE_URL at the session pooler or the direct connection when calls must follow changes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from urllib.parse import urlsplit

import psycopg
from psycopg import AsyncConnection, sql

from stores.changes import Change, ListenerFeed, channel_digest
from stores.errors import scrub
from stores.postgres.config import TRANSACTION_POOLER_PORT, parse_url
from stores.postgres.db import Database

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # how long one wait for notifications lasts; LISTEN/UNLISTEN run between waits
_PUBLISH = "select pg_notify(%s, %s)"


def channel(user_id: str) -> str:
    """`ma_` + 40 hex digits: a lower-case identifier, so LISTEN needs no quoting."""
    return "ma_" + channel_digest(user_id)


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


class PostgresChangeFeed(ListenerFeed):
    kind = "Postgres"

    def __init__(self, db: Database, url: str, connect_timeout: float = 5.0) -> None:
        super().__init__()
        self._db = db
        self._url = url
        self._connect_timeout = connect_timeout
        if _port(url) == TRANSACTION_POOLER_PORT:
            logger.warning(
                "STORE_URL uses port %d (Supabase's transaction pooler), where LISTEN does not work: live calls "
                "will not see changes made elsewhere; use the session pooler (5432) or a direct connection",
                TRANSACTION_POOLER_PORT,
            )

    async def _send(self, change: Change) -> None:
        await self._db.run(None, (_PUBLISH, [channel(change.user_id), change.payload()]))

    def _channel(self, user_id: str) -> str:
        return channel(user_id)

    async def _listen_loop(self) -> None:
        backoff = 0.1
        config = parse_url(self._url)
        while not self._stopping():
            conn: AsyncConnection | None = None
            try:
                conn = await asyncio.wait_for(
                    AsyncConnection.connect(
                        config.conninfo,
                        autocommit=True,
                        connect_timeout=max(2, math.ceil(self._connect_timeout)),
                        application_name="memory-agent-changes",
                    ),
                    self._connect_timeout,
                )
                backoff = 0.1
                await self._follow(conn)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self._set_all_listening(False)
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                logger.warning(
                    "the Postgres change listener of %s failed (%s); reconnecting in %.1fs",
                    config.redacted,
                    scrub(text, self._url),
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
            finally:
                if conn is not None:
                    try:
                        await asyncio.shield(conn.close())
                    except Exception as exc:  # already broken
                        logger.debug("closing the Postgres change listener failed: %s", type(exc).__name__)

    async def _follow(self, conn: AsyncConnection) -> None:
        listening: set[str] = set()
        while not self._stopping():
            wanted = dict(self._channels)
            for name in sorted(set(wanted) - listening):
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
                listening.add(name)
                self._set_listening(wanted[name], True)
            for name in sorted(listening - set(wanted)):
                await conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(name)))
                listening.discard(name)
            if not listening:
                self._wakeup.clear()
                if self._stopping():
                    return
                await self._wakeup.wait()
                continue
            async for notify in conn.notifies(timeout=READ_TIMEOUT_S):
                user_id = self._channels.get(notify.channel)
                if user_id is not None:
                    self._deliver(user_id, Change.from_payload(user_id, notify.payload))
