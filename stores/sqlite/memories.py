"""Memories and profiles in SQLite.

Datetimes are stored as fixed-width ISO-8601 UTC text with microseconds, so they
read back equal (aware UTC, to the microsecond) and sort as text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from memory.models import MAX_MEMORY_CHANGES, Memory, MemoryChange, MemoryOp, Profile, Provenance
from memory.ranking import MAX_PACKED_TERMS, Posting, epoch_us, index_terms, rank_postings
from stores.base import ChangeNote, MemoryStore, ProfileStore
from stores.sqlite.database import Database
from stores.sqlite.search import best_refs

_MEMORY_COLUMNS = "id, user_id, category, key, value, source, created_at, updated_at, thread_id, item_id"
_PROFILE_COLUMNS = "id, identity, email, created_at, last_seen_at, memory_enabled"
_CHANGE_COLUMNS = "id, user_id, at, op, category, key, memory_id, source, thread_id, item_id"
_INSERT_CHANGE = f"INSERT INTO memory_changes ({_CHANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# keep the newest MAX_MEMORY_CHANGES entries of the user (the index makes the OFFSET cheap)
_TRIM_CHANGES = f"""
DELETE FROM memory_changes WHERE user_id = :user_id AND seq <= (
  SELECT seq FROM memory_changes WHERE user_id = :user_id ORDER BY seq DESC LIMIT 1 OFFSET {MAX_MEMORY_CHANGES}
)
"""


def dump_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def load_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _memory(row: Any) -> Memory:
    return Memory(
        id=row[0],
        user_id=row[1],
        category=row[2],
        key=row[3],
        value=row[4],
        source=row[5],
        created_at=load_time(row[6]),
        updated_at=load_time(row[7]),
        thread_id=row[8],
        item_id=row[9],
    )


def _reindex(conn: sqlite3.Connection, memory: Memory) -> None:
    """Replace the memory's postings (same transaction as the write, so the index never lags)."""
    conn.execute(
        "DELETE FROM memory_terms WHERE user_id = ? AND category = ? AND key = ?",
        (memory.user_id, memory.category, memory.key),
    )
    updated_us = epoch_us(memory.updated_at)
    conn.executemany(
        "INSERT INTO memory_terms (user_id, term, category, key, field, updated_us, id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (memory.user_id, term, memory.category, memory.key, field, updated_us, memory.id)
            for term, field in index_terms(memory.category, memory.key, memory.value).items()
        ],
    )


def _load(conn: sqlite3.Connection, user_id: str, refs: list[tuple[str, str]]) -> list[Memory]:
    """The memories at `refs`, in that order (primary-key lookups; one may have gone meanwhile)."""
    found = []
    for category, key in refs:
        row = conn.execute(
            f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE user_id = ? AND category = ? AND key = ?",
            (user_id, category, key),
        ).fetchone()
        if row is not None:
            found.append(_memory(row))
    return found


def _profile(row: Any, *, first_login: bool) -> Profile:
    return Profile(
        id=row[0],
        identity=row[1],
        email=row[2],
        is_first_login=first_login,
        created_at=load_time(row[3]),
        last_seen_at=load_time(row[4]),
        memory_enabled=bool(row[5]),
    )


def _change(row: Any) -> MemoryChange:
    return MemoryChange(
        id=row[0],
        user_id=row[1],
        at=load_time(row[2]),
        op=row[3],
        category=row[4],
        key=row[5],
        memory_id=row[6],
        source=row[7],
        thread_id=row[8],
        item_id=row[9],
    )


def record(
    conn: sqlite3.Connection,
    user_id: str,
    change: ChangeNote,
    entries: list[tuple[MemoryOp, str, str, str]],
    *,
    numbered: bool = False,
) -> None:
    """Append audit entries (op, category, key, memory id) and trim the user's trail, in the caller's transaction.

    `numbered`: a write that forgets several memories gives its entries ids `<change id>.<n>`.
    """
    at = dump_time(change.at)
    for n, (op, category, key, memory_id) in enumerate(entries, start=1):
        entry_id = f"{change.id}.{n}" if numbered else change.id
        conn.execute(
            _INSERT_CHANGE,
            (entry_id, user_id, at, op, category, key, memory_id, change.source, change.thread_id, change.item_id),
        )
    conn.execute(_TRIM_CHANGES, {"user_id": user_id})


class SqliteMemoryStore(MemoryStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _upsert(
        self,
        user_id: str,
        category: str,
        key: str,
        value: str,
        origin: Provenance,
        now: datetime,
        new_id: str,
        change: ChangeNote,
    ) -> Memory:
        params = (user_id, category, key, new_id, value, *origin, dump_time(now), dump_time(now))

        def work(conn: sqlite3.Connection) -> Any:
            row = conn.execute(
                "INSERT INTO memories "
                "(user_id, category, key, id, value, source, thread_id, item_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, category, key) DO UPDATE SET "
                "value = excluded.value, source = excluded.source, thread_id = excluded.thread_id, "
                "item_id = excluded.item_id, updated_at = excluded.updated_at "
                f"RETURNING {_MEMORY_COLUMNS}",
                params,
            ).fetchone()
            _reindex(conn, _memory(row))
            record(conn, user_id, change, [("remember" if row[0] == new_id else "update", category, key, row[0])])
            return row

        return _memory(await self._db.write(work))

    async def _stale(self, updated_before: datetime, batch: int) -> AsyncIterator[list[tuple[str, str, str]]]:
        cursor: tuple[str, str, str, str] = ("", "", "", "")
        while True:
            rows = await self._db.fetch_all(
                "SELECT updated_at, user_id, category, key FROM memories "
                "WHERE updated_at < ? AND (updated_at, user_id, category, key) > (?, ?, ?, ?) "
                "ORDER BY updated_at, user_id, category, key LIMIT ?",
                (dump_time(updated_before), *cursor, batch),
            )
            if not rows:
                return
            cursor = tuple(rows[-1])
            yield [(str(r[1]), str(r[2]), str(r[3])) for r in rows]
            if len(rows) < batch:
                return

    async def _history(self, user_id: str, limit: int) -> list[MemoryChange]:
        rows = await self._db.fetch_all(
            f"SELECT {_CHANGE_COLUMNS} FROM memory_changes WHERE user_id = ? ORDER BY seq DESC LIMIT ?",
            (user_id, limit),
        )
        return [_change(row) for row in rows]

    async def _replace_history(self, user_id: str, changes: list[MemoryChange]) -> None:
        rows = [
            (c.id, user_id, dump_time(c.at), c.op, c.category, c.key, c.memory_id, c.source, c.thread_id, c.item_id)
            for c in reversed(changes)  # oldest first: `seq` keeps their order
        ]

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM memory_changes WHERE user_id = ?", (user_id,))
            conn.executemany(_INSERT_CHANGE, rows)

        await self._db.write(work)

    async def _get(self, user_id: str, category: str, key: str) -> Memory | None:
        row = await self._db.fetch_one(
            f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE user_id = ? AND category = ? AND key = ?",
            (user_id, category, key),
        )
        return None if row is None else _memory(row)

    async def _list(self, user_id: str, category: str | None) -> list[Memory]:
        if category is None:
            rows = await self._db.fetch_all(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE user_id = ?", (user_id,))
        else:
            rows = await self._db.fetch_all(
                f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE user_id = ? AND category = ?", (user_id, category)
            )
        return [_memory(row) for row in rows]

    async def _delete(
        self, user_id: str, category: str, key: str, change: ChangeNote, *, updated_before: datetime | None = None
    ) -> bool:
        cutoff = None if updated_before is None else dump_time(updated_before)

        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(  # its postings go by the cascade
                "DELETE FROM memories WHERE user_id = ? AND category = ? AND key = ? "
                "AND (? IS NULL OR updated_at < ?) RETURNING id",
                (user_id, category, key, cutoff, cutoff),
            ).fetchone()
            if row is None:
                return False
            record(conn, user_id, change, [("forget", category, key, row[0])])
            return True

        return await self._db.write(work, erase=True)

    async def _delete_from(self, user_id: str, thread_id: str, change: ChangeNote) -> int:
        def work(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "DELETE FROM memories WHERE user_id = ? AND thread_id = ? RETURNING category, key, id",
                (user_id, thread_id),
            ).fetchall()
            if rows:
                record(conn, user_id, change, [("forget", c, k, i) for c, k, i in sorted(rows)], numbered=True)
            return len(rows)

        return await self._db.write(work, erase=True)

    async def _search(self, user_id: str, terms: list[str], limit: int) -> list[Memory]:
        if len(terms) > MAX_PACKED_TERMS:  # a very long query: rank from the postings themselves
            return await self._search_postings(user_id, terms, limit)

        def work(conn: sqlite3.Connection) -> list[Memory]:
            return _load(conn, user_id, best_refs(conn, user_id, terms, limit))

        return await self._db.read(work)

    async def _search_postings(self, user_id: str, terms: list[str], limit: int) -> list[Memory]:
        def work(conn: sqlite3.Connection) -> list[Memory]:
            count = conn.execute("SELECT n FROM memory_counts WHERE user_id = ?", (user_id,)).fetchone()
            if not count or not count[0]:
                return []
            postings: dict[str, list[Posting[tuple[str, str]]]] = {term: [] for term in terms}
            marks = ", ".join("?" * len(terms))
            for term, category, key, field, updated_us, mid in conn.execute(
                "SELECT term, category, key, field, updated_us, id FROM memory_terms "
                f"WHERE user_id = ? AND term IN ({marks})",
                (user_id, *terms),
            ):
                postings[term].append(Posting((category, key), field, updated_us, mid))
            return _load(conn, user_id, rank_postings(postings, count[0], limit))

        return await self._db.read(work)


class SqliteProfileStore(ProfileStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _ensure(self, user_id: str, identity: str | None, email: str | None, now: datetime) -> Profile:
        stamp = dump_time(now)
        default_enabled = self.default_memory_enabled

        def work(conn: sqlite3.Connection) -> Profile:
            # The insert and the touch share one IMMEDIATE transaction, so exactly one
            # caller (in any process) sees its insert succeed.
            created = conn.execute(
                "INSERT INTO profiles (id, identity, email, created_at, last_seen_at, memory_enabled) "
                f"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING {_PROFILE_COLUMNS}",
                (user_id, identity, email, stamp, stamp, int(default_enabled)),
            ).fetchone()
            if created is not None:
                return _profile(created, first_login=True)
            touched = conn.execute(
                "UPDATE profiles SET identity = COALESCE(identity, ?), email = COALESCE(email, ?), "
                f"last_seen_at = ? WHERE id = ? RETURNING {_PROFILE_COLUMNS}",
                (identity, email, stamp, user_id),
            ).fetchone()
            return _profile(touched, first_login=False)

        return await self._db.write(work)

    async def _get(self, user_id: str) -> Profile | None:
        row = await self._db.fetch_one(f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE id = ?", (user_id,))
        return None if row is None else _profile(row, first_login=False)

    async def _set_memory_enabled(self, user_id: str, enabled: bool, now: datetime) -> Profile:
        stamp = dump_time(now)

        def work(conn: sqlite3.Connection) -> Profile:
            row = conn.execute(
                "INSERT INTO profiles (id, created_at, last_seen_at, memory_enabled) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET memory_enabled = excluded.memory_enabled "
                f"RETURNING {_PROFILE_COLUMNS}",
                (user_id, stamp, stamp, int(enabled)),
            ).fetchone()
            return _profile(row, first_login=False)

        return await self._db.write(work)
