"""ChatKit threads, items and attachment metadata in SQLite, every statement scoped by user.

Pages are keyset scans on `(sort_key, seq)` through the `*_order` indexes, which
start with the user (and thread) columns: a page costs O(log n + limit) and reads
one more row than asked to know whether another page follows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping

from stores.base import RawPage, ThreadStore
from stores.sqlite.database import Database

_PUT_THREAD = """
INSERT INTO threads (user_id, id, sort_key, seq, data)
VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM threads), ?)
ON CONFLICT (user_id, id) DO UPDATE SET data = excluded.data
"""

# Inserts only when the thread exists for this user; an upsert keeps sort_key and seq.
_PUT_ITEM = """
INSERT INTO items (user_id, thread_id, id, sort_key, seq, data)
SELECT :user_id, :thread_id, :id, :sort_key, (SELECT COALESCE(MAX(seq), 0) + 1 FROM items), :data
WHERE EXISTS (SELECT 1 FROM threads WHERE user_id = :user_id AND id = :thread_id)
ON CONFLICT (user_id, thread_id, id) DO UPDATE SET data = excluded.data
"""


def _page_sql(table: str, scope: str, has_cursor: bool, descending: bool) -> str:
    """Keyset page SQL; the cursor row is looked up inside the same user (and thread) scope."""
    direction = "DESC" if descending else "ASC"
    order = f"ORDER BY t.sort_key {direction}, t.seq {direction} LIMIT :limit"
    if not has_cursor:
        return f"SELECT t.data FROM {table} AS t WHERE {scope.format(a='t')} {order}"
    compare = "<" if descending else ">"
    return (
        f"SELECT t.data FROM {table} AS c, {table} AS t "
        f"WHERE {scope.format(a='c')} AND c.id = :after AND {scope.format(a='t')} "
        f"AND (t.sort_key, t.seq) {compare} (c.sort_key, c.seq) {order}"
    )


_THREAD_SCOPE = "{a}.user_id = :user_id"
_ITEM_SCOPE = "{a}.user_id = :user_id AND {a}.thread_id = :thread_id"
_PAGES = {
    (table, cursor, desc): _page_sql(table, scope, cursor, desc)
    for table, scope in (("threads", _THREAD_SCOPE), ("items", _ITEM_SCOPE))
    for cursor in (False, True)
    for desc in (False, True)
}


class SqliteThreadStore(ThreadStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _page(self, table: str, params: Mapping[str, object], limit: int, descending: bool) -> RawPage:
        sql = _PAGES[(table, params.get("after") is not None, descending)]
        rows = await self._db.fetch_all(sql, {**params, "limit": limit + 1})
        return RawPage([row[0] for row in rows[:limit]], len(rows) > limit)

    # -- threads -----------------------------------------------------------
    async def _get_thread(self, user_id: str, thread_id: str) -> str | None:
        row = await self._db.fetch_one("SELECT data FROM threads WHERE user_id = ? AND id = ?", (user_id, thread_id))
        return None if row is None else str(row[0])

    async def _put_thread(self, user_id: str, thread_id: str, sort_key: int, data: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(_PUT_THREAD, (user_id, thread_id, sort_key, data))

        await self._db.write(work)

    async def _page_threads(self, user_id: str, after: str | None, limit: int, descending: bool) -> RawPage:
        return await self._page("threads", {"user_id": user_id, "after": after}, limit, descending)

    async def _delete_thread(self, user_id: str, thread_id: str) -> list[str]:
        def work(conn: sqlite3.Connection) -> list[str]:
            gone = conn.execute(
                "DELETE FROM attachments WHERE user_id = ? AND thread_id = ? RETURNING id", (user_id, thread_id)
            ).fetchall()
            conn.execute("DELETE FROM threads WHERE user_id = ? AND id = ?", (user_id, thread_id))  # items cascade
            return [str(row[0]) for row in gone]

        return await self._db.write(work, erase=True)

    # -- items -------------------------------------------------------------
    async def _get_item(self, user_id: str, thread_id: str, item_id: str) -> str | None:
        row = await self._db.fetch_one(
            "SELECT data FROM items WHERE user_id = ? AND thread_id = ? AND id = ?", (user_id, thread_id, item_id)
        )
        return None if row is None else str(row[0])

    async def _put_item(self, user_id: str, thread_id: str, item_id: str, sort_key: int, data: str) -> bool:
        params = {"user_id": user_id, "thread_id": thread_id, "id": item_id, "sort_key": sort_key, "data": data}

        def work(conn: sqlite3.Connection) -> bool:
            return conn.execute(_PUT_ITEM, params).rowcount > 0

        return await self._db.write(work)

    async def _page_items(
        self, user_id: str, thread_id: str, after: str | None, limit: int, descending: bool
    ) -> RawPage:
        params = {"user_id": user_id, "thread_id": thread_id, "after": after}
        return await self._page("items", params, limit, descending)

    async def _delete_item(self, user_id: str, thread_id: str, item_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM items WHERE user_id = ? AND thread_id = ? AND id = ?", (user_id, thread_id, item_id)
            )

        await self._db.write(work, erase=True)

    # -- attachments ---------------------------------------------------------
    async def _get_attachment(self, user_id: str, attachment_id: str) -> str | None:
        row = await self._db.fetch_one(
            "SELECT data FROM attachments WHERE user_id = ? AND id = ?", (user_id, attachment_id)
        )
        return None if row is None else str(row[0])

    async def _put_attachment(self, user_id: str, attachment_id: str, thread_id: str | None, data: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO attachments (user_id, id, thread_id, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, id) DO UPDATE SET thread_id = excluded.thread_id, data = excluded.data",
                (user_id, attachment_id, thread_id, data),
            )

        await self._db.write(work)

    async def _delete_attachment(self, user_id: str, attachment_id: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("DELETE FROM attachments WHERE user_id = ? AND id = ?", (user_id, attachment_id))
            return cursor.rowcount > 0

        return await self._db.write(work, erase=True)

    async def _old_threads(self, created_before: int, batch: int) -> AsyncIterator[list[tuple[str, str, str]]]:
        cursor = (-(1 << 63), -1)  # below every (sort_key, seq)
        while True:
            rows = await self._db.fetch_all(
                "SELECT sort_key, seq, user_id, id, data FROM threads "
                "WHERE sort_key < ? AND (sort_key, seq) > (?, ?) ORDER BY sort_key, seq LIMIT ?",
                (created_before, *cursor, batch),
            )
            if not rows:
                return
            cursor = (int(rows[-1][0]), int(rows[-1][1]))
            yield [(str(r[2]), str(r[3]), str(r[4])) for r in rows]
            if len(rows) < batch:
                return

    async def _list_attachments(self, user_id: str) -> list[str]:
        rows = await self._db.fetch_all("SELECT data FROM attachments WHERE user_id = ? ORDER BY id", (user_id,))
        return [str(row[0]) for row in rows]
