"""The SQLite schema as an ordered list of migrations, applied once each on open.

`schema_version` records every applied migration number; opening an up-to-date
database runs nothing. Append new migrations, never edit applied ones.

Every table is keyed by the user first, so one user's rows never share a key with
another's and every index starts with the user columns. `seq` is an insertion
counter set on first insert and never touched by upserts: it breaks ties between
rows with the same `sort_key` (created_at in microseconds) so positions are stable.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from memory.ranking import epoch_us, index_terms
from stores.errors import StoreError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE threads (
            user_id  TEXT    NOT NULL,
            id       TEXT    NOT NULL,
            sort_key INTEGER NOT NULL,
            seq      INTEGER NOT NULL,
            data     TEXT    NOT NULL,
            PRIMARY KEY (user_id, id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX threads_order ON threads (user_id, sort_key, seq)",
        "CREATE INDEX threads_seq ON threads (seq)",
        """
        CREATE TABLE items (
            user_id   TEXT    NOT NULL,
            thread_id TEXT    NOT NULL,
            id        TEXT    NOT NULL,
            sort_key  INTEGER NOT NULL,
            seq       INTEGER NOT NULL,
            data      TEXT    NOT NULL,
            PRIMARY KEY (user_id, thread_id, id),
            FOREIGN KEY (user_id, thread_id) REFERENCES threads (user_id, id) ON DELETE CASCADE
        ) WITHOUT ROWID
        """,
        "CREATE INDEX items_order ON items (user_id, thread_id, sort_key, seq)",
        "CREATE INDEX items_seq ON items (seq)",
        """
        CREATE TABLE attachments (
            user_id   TEXT NOT NULL,
            id        TEXT NOT NULL,
            thread_id TEXT,
            data      TEXT NOT NULL,
            PRIMARY KEY (user_id, id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX attachments_thread ON attachments (user_id, thread_id)",
        """
        CREATE TABLE memories (
            user_id    TEXT NOT NULL,
            category   TEXT NOT NULL,
            key        TEXT NOT NULL,
            id         TEXT NOT NULL,
            value      TEXT NOT NULL,
            source     TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (user_id, category, key)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE profiles (
            id           TEXT NOT NULL PRIMARY KEY,
            identity     TEXT,
            email        TEXT,
            created_at   TEXT NOT NULL,
            last_seen_at TEXT NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    # version 2 (issue 9): memory provenance and the per-user memory consent switch.
    # Existing memories have no known thread/item; existing profiles keep memory on.
    (
        "ALTER TABLE memories ADD COLUMN thread_id TEXT",
        "ALTER TABLE memories ADD COLUMN item_id TEXT",
        "CREATE INDEX memories_thread ON memories (user_id, thread_id) WHERE thread_id IS NOT NULL",
        "ALTER TABLE profiles ADD COLUMN memory_enabled INTEGER NOT NULL DEFAULT 1",
    ),
    # version 3 (issue 12): the memory search index.
    (
        # The search index (issue 12): one row per (memory, term) with the best field the
        # term appears in, and a per-user memory count; exactly what memory.ranking.rank
        # needs, so a search reads the postings of its terms instead of every memory.
        # Deleting a memory (any path) drops its postings by the cascade, and the count
        # follows every insert and delete through triggers.
        """
        CREATE TABLE memory_terms (
            user_id    TEXT    NOT NULL,
            term       TEXT    NOT NULL,
            category   TEXT    NOT NULL,
            key        TEXT    NOT NULL,
            field      INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            id         TEXT    NOT NULL,
            PRIMARY KEY (user_id, term, category, key),
            FOREIGN KEY (user_id, category, key) REFERENCES memories (user_id, category, key) ON DELETE CASCADE
        ) WITHOUT ROWID
        """,
        "CREATE INDEX memory_terms_memory ON memory_terms (user_id, category, key)",
        """
        CREATE TABLE memory_counts (
            user_id TEXT    NOT NULL PRIMARY KEY,
            n       INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TRIGGER memories_count_insert AFTER INSERT ON memories BEGIN
            INSERT INTO memory_counts (user_id, n) VALUES (new.user_id, 1)
            ON CONFLICT (user_id) DO UPDATE SET n = n + 1;
        END
        """,
        """
        CREATE TRIGGER memories_count_delete AFTER DELETE ON memories BEGIN
            UPDATE memory_counts SET n = n - 1 WHERE user_id = old.user_id;
        END
        """,
        # existing memories: index them with the Python tokeniser (registered by `migrate`)
        """
        INSERT INTO memory_terms (user_id, term, category, key, field, updated_us, id)
        SELECT m.user_id, t.key, m.category, m.key, t.value, memory_epoch_us(m.updated_at), m.id
        FROM memories m, json_each(memory_index_terms(m.category, m.key, m.value)) t
        """,
        "INSERT INTO memory_counts (user_id, n) SELECT user_id, count(*) FROM memories GROUP BY user_id",
    ),
    # version 4 (issue 10): the memory audit trail; `seq` orders a user's entries (newest = largest)
    (
        """
        CREATE TABLE memory_changes (
            seq       INTEGER PRIMARY KEY,
            user_id   TEXT NOT NULL,
            id        TEXT NOT NULL,
            at        TEXT NOT NULL,
            op        TEXT NOT NULL,
            category  TEXT NOT NULL,
            key       TEXT NOT NULL,
            memory_id TEXT,
            source    TEXT,
            thread_id TEXT,
            item_id   TEXT
        )
        """,
        "CREATE INDEX memory_changes_user ON memory_changes (user_id, seq)",
        # retention sweeps find stale memories and old threads across users without a full scan
        "CREATE INDEX memories_updated ON memories (updated_at)",
        "CREATE INDEX threads_age ON threads (sort_key, seq)",
    ),
    # version 5 (issue 10): the change feed (stores.sqlite.changes); no user data: channel is a digest
    (
        """
        CREATE TABLE changes (
            seq     INTEGER PRIMARY KEY AUTOINCREMENT,
            channel TEXT NOT NULL,
            payload TEXT NOT NULL,
            at      REAL NOT NULL
        )
        """,
        "CREATE INDEX changes_at ON changes (at)",
    ),
    # version 6 (issue 12): each term's postings in ranking order (stores.sqlite.search reads the first `limit`)
    ("CREATE INDEX memory_terms_best ON memory_terms (user_id, term, field DESC, updated_us DESC, id)",),
)

USER_TABLES: tuple[tuple[str, str], ...] = (
    # (table, its user column), children before parents
    ("items", "user_id"),
    ("attachments", "user_id"),
    ("threads", "user_id"),
    ("memory_terms", "user_id"),
    ("memories", "user_id"),
    ("memory_counts", "user_id"),
    ("memory_changes", "user_id"),
    ("profiles", "id"),
)


def _index_terms_json(category: str, key: str, value: str) -> str:
    return json.dumps(index_terms(category, key, value))


def _epoch_us(stamp: str) -> int:
    return epoch_us(datetime.fromisoformat(stamp))


def register_functions(conn: sqlite3.Connection) -> None:
    """SQL functions the migrations use to index existing memories exactly as the store does."""
    conn.create_function("memory_index_terms", 3, _index_terms_json, deterministic=True)
    conn.create_function("memory_epoch_us", 1, _epoch_us, deterministic=True)


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Apply the migrations this database lacks in one write transaction; return the schema version.

    Blocking: runs on the connection's worker thread. Safe when several processes
    open the same new file at once (the IMMEDIATE lock makes them take turns).
    """
    register_functions(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (v INTEGER PRIMARY KEY)")
        current = conn.execute("SELECT COALESCE(MAX(v), 0) FROM schema_version").fetchone()[0]
        if current > len(MIGRATIONS):
            raise StoreError(
                f"the SQLite store {path} has schema version {current}, newer than this version of "
                f"memory-agent understands ({len(MIGRATIONS)}); upgrade memory-agent or use another file"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (v) VALUES (?)", (version,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(MIGRATIONS)
