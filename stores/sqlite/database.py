"""Two aiosqlite connections to one file: a writer and a read-only reader.

Each aiosqlite connection owns a worker thread and runs the calls queued to it one
at a time, so nothing blocks the event loop. A write is one plain function run on
the writer's thread inside `BEGIN IMMEDIATE ... COMMIT`: the whole transaction is a
single queued call, so concurrent coroutines never interleave statements, a
cancelled caller cannot leave a transaction open, and other processes on the same
file wait on the file lock (busy_timeout) instead of failing. Reads are single
statements on the reader; WAL lets them run while another connection writes, and
each sees only committed data.

Every call has a deadline, STORE_OP_TIMEOUT (a stuck disk, or another process holding
the write lock longer than that): the caller gets StoreTimeoutError naming the file.
The queued call itself cannot be interrupted on its thread and may still complete
later; every store write is an idempotent upsert or delete, so a retry is safe.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from stores.errors import StoreError, StoreTimeoutError, StoreUnavailableError, closed_error, timeout_error
from stores.sqlite import schema

logger = logging.getLogger(__name__)

T = TypeVar("T")
# result codes that mean STORE_URL points somewhere unusable, whatever happens next
_CONFIGURATION_ERRORS = frozenset(
    {sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH}
)
Params = Sequence[Any] | dict[str, Any]
DEFAULT_OP_TIMEOUT = 5.0


async def _on_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(sqlite3_connection, *args)` on the connection's worker thread, as one queued call.

    aiosqlite has no public way to run several statements as one unit on its thread;
    its `_execute` queue (stable since 0.17, version pinned in pyproject) is the one
    private name used, here only.
    """
    result: T = await conn._execute(fn, conn._conn, *args, **kwargs)
    return result


@dataclass
class _Erasures:
    """Writer-thread bookkeeping: erases committed, and how many of them the last file rewrite covered."""

    committed: int = 0
    compacted: int = 0
    rewrites: int = 0  # file rewrites run so far (bursts of erases share one)


# the Database whose erases inside `erasing_in_bulk` wait for one rewrite at the end
_bulk_erasing: ContextVar[Database | None] = ContextVar("sqlite_bulk_erasing", default=None)


def _transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T], erasures: _Erasures | None) -> T:
    """Run `work` in one write transaction (on the connection's thread); counts it in `erasures` if given."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if erasures is not None:
        erasures.committed += 1
    return result


def _compact_file(conn: sqlite3.Connection, erasures: _Erasures, upto: int) -> None:
    """Rewrite the database file (VACUUM) and empty the WAL, unless a rewrite since erase `upto` did.

    secure_delete zeroes the deleted rows themselves, but SQLite leaves stale copies of
    rows in the unused middle of pages whose cells were moved when a page split or
    merged, long before the delete: a byte scan finds them. Only rewriting every page
    (VACUUM) removes those. The checkpoint then copies the rewritten pages over the old
    ones and truncates the WAL. Erases queued before this call started are covered by
    it, so a burst of erases costs one rewrite.
    """
    if erasures.compacted >= upto:
        return
    covered = erasures.committed
    conn.execute("VACUUM")
    erasures.rewrites += 1
    if checkpoint(conn):
        erasures.compacted = covered


_CHECKPOINT_TRIES = 20
_CHECKPOINT_PAUSE_S = 0.05


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database file and truncate it to zero bytes; False if a reader held it.

    The WAL keeps every page version written since the last checkpoint, deleted text
    included; after a full TRUNCATE checkpoint only the rewritten pages remain. A reader
    in another process may keep an old snapshot open for longer than busy_timeout:
    then the WAL is only partly reset, which is logged (the next erase retries).
    """
    for _ in range(_CHECKPOINT_TRIES):
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return True
        time.sleep(_CHECKPOINT_PAUSE_S)  # a reader's snapshot usually ends within milliseconds
    logger.warning(
        "SQLite WAL checkpoint after an erase was blocked by a reader (another connection or process); erased "
        "text may stay in the store's files until the next erase or the last connection closes"
    )
    return False


def _snapshot(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` in one read transaction, so its statements see one consistent state."""
    conn.execute("BEGIN")
    try:
        return work(conn)
    finally:
        conn.execute("COMMIT")


def _configure(conn: sqlite3.Connection, busy_timeout_ms: int, *, writer: bool) -> str:
    """Per-connection settings; returns the journal mode in force."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not writer:
        conn.execute("PRAGMA query_only = ON")
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    # erased rows are overwritten with zeros instead of only being unlinked (see `checkpoint`)
    conn.execute("PRAGMA secure_delete = ON")
    # FULL: every commit is fsynced to the WAL before it is acknowledged, so not even an
    # OS crash or power cut loses an acknowledged write (NORMAL could drop the last ones).
    conn.execute("PRAGMA synchronous = FULL")
    return mode


class Database:
    """The store's connections; `aclose()` closes them."""

    busy_timeout_ms = 5000  # set by `open`; other connections to the file (the change poller) use it too

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        op_timeout: float = DEFAULT_OP_TIMEOUT,
    ) -> None:
        self.path = path
        self.op_timeout = op_timeout
        self._writer = writer
        self._reader = reader
        self._closed = False
        self._erasures = _Erasures()  # touched only on the writer's thread

    @classmethod
    async def open(cls, path: Path, busy_timeout_ms: int, op_timeout: float = DEFAULT_OP_TIMEOUT) -> Database:
        """Connect, switch to WAL, apply migrations; a StoreError naming the file if unusable."""
        opened: list[aiosqlite.Connection] = []
        existed = await asyncio.to_thread(path.exists)
        try:
            writer = await aiosqlite.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
            opened.append(writer)
            mode = await _on_thread(writer, _configure, busy_timeout_ms, writer=True)
            if mode.lower() != "wal":
                logger.warning(
                    "SQLite store %s could not switch to WAL (journal mode %s); writes block reads", path, mode
                )
            await _on_thread(writer, schema.migrate, str(path))
            reader = await aiosqlite.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
            opened.append(reader)
            await _on_thread(reader, _configure, busy_timeout_ms, writer=False)
        except BaseException as exc:
            for conn in opened:
                await _close_quietly(conn)
            if not existed:  # never leave an empty file behind that looks like a store
                await asyncio.to_thread(_remove_empty, path)
            if isinstance(exc, sqlite3.Error):
                # a wrong STORE_URL (not a database, no permission) is not an outage: never fall back
                code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # primary result code
                full = await asyncio.to_thread(disk_full_problem, path, exc)
                if full:
                    raise StoreUnavailableError(f"cannot open the SQLite store {path}: {full}") from None
                error = StoreError if code in _CONFIGURATION_ERRORS else StoreUnavailableError
                raise error(
                    f"cannot open the SQLite store {path}: {exc}; check that STORE_URL names a memory-agent "
                    "database (or a file that does not exist yet) in a directory this process may write to"
                ) from None
            raise
        db = cls(path, writer, reader, op_timeout)
        db.busy_timeout_ms = busy_timeout_ms
        return db

    async def write(self, work: Callable[[sqlite3.Connection], T], *, erase: bool = False) -> T:
        """Run `work(conn)` as one atomic write transaction on the writer's thread.

        `erase=True` for writes that delete a user's content: before it returns, the file
        is rewritten and the WAL emptied (`compact`), so no file keeps the deleted text.
        Inside `erasing_in_bulk` that waits for the end of the block.
        """
        self._check_open()
        erasures = self._erasures if erase else None
        try:
            result = await asyncio.wait_for(_on_thread(self._writer, _transaction, work, erasures), self.op_timeout)
        except TimeoutError:
            raise timeout_error(f"SQLite store {self.path}", self.op_timeout) from None
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        if erase and _bulk_erasing.get() is not self:
            await self.compact()
        return result

    @property
    def rewrites(self) -> int:
        """How many times an erase rewrote the file so far."""
        return self._erasures.rewrites

    async def compact(self) -> None:
        """Rewrite the file so no byte of the erases committed so far stays in it (see `_compact_file`).

        A rewrite that already covered them is not repeated.
        """
        self._check_open()
        target = self._erasures.committed
        if self._erasures.compacted >= target:
            return
        try:
            await asyncio.wait_for(_on_thread(self._writer, _compact_file, self._erasures, target), self.op_timeout)
        except TimeoutError:
            raise StoreTimeoutError(
                f"the data was deleted from the SQLite store {self.path}, but rewriting the file so that no copy "
                f"of its bytes stays did not finish within STORE_OP_TIMEOUT={self.op_timeout:g}s (it goes on in "
                "the background); raise STORE_OP_TIMEOUT for a file this large"
            ) from None
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    @asynccontextmanager
    async def erasing_in_bulk(self) -> AsyncIterator[None]:
        """Erases inside the block share one file rewrite at its end (retention sweeps forget many things)."""
        token = _bulk_erasing.set(self)
        try:
            yield
        finally:
            _bulk_erasing.reset(token)
            if not self._closed:
                await self.compact()

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(conn)` on the reader's thread in one read transaction (one snapshot, one queued call)."""
        self._check_open()
        try:
            return await _on_thread(self._reader, _snapshot, work)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Any]:
        """All rows of one read statement (a consistent snapshot of committed data)."""
        self._check_open()
        try:
            return list(await asyncio.wait_for(self._reader.execute_fetchall(sql, params), self.op_timeout))
        except TimeoutError:
            raise timeout_error(f"SQLite store {self.path}", self.op_timeout) from None
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    async def fetch_one(self, sql: str, params: Params = ()) -> Any | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        """Close both connections, folding the WAL into the database file first.

        The last connection out checkpoints anyway, but silently: when that fails (a
        full disk) the newest data lives only in the `-wal` file, so a copy of the
        `.db` alone would miss it. The checkpoint is run explicitly and a failure logged.
        """
        if self._closed:
            return
        self._closed = True
        await _close_quietly(self._reader)
        try:
            await self._writer.execute("PRAGMA optimize")
        except (sqlite3.Error, ValueError) as exc:
            logger.debug("PRAGMA optimize failed on %s: %s", self.path, exc)
        await self._final_checkpoint()
        await _close_quietly(self._writer)

    async def _final_checkpoint(self) -> None:
        try:
            row = await (await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")).fetchone()
            if row is not None and row[0]:
                # another process (a worker sharing the file) still has it open: nothing is at risk,
                # the last one to close folds the log in
                logger.debug("SQLite store %s: write-ahead log left for the other process still using it", self.path)
            return
        except (sqlite3.Error, ValueError) as exc:
            failure = await asyncio.to_thread(disk_full_problem, self.path, exc) or str(exc)
        if failure:
            logger.error(
                "SQLite store %s: the write-ahead log could not be folded into the database file on close (%s). "
                "The newest data is only in %s-wal: keep it next to the .db (back up or copy both files, "
                "never the .db alone); it is applied the next time the store opens with enough disk space",
                self.path,
                failure,
                self.path,
            )

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error(f"SQLite store {self.path}")

    def _failure(self, exc: sqlite3.Error) -> StoreUnavailableError:
        full = disk_full_problem(self.path, exc)
        if full:
            return StoreUnavailableError(f"the SQLite store {self.path} failed: {full}")
        hint = (
            "another process holds a long write lock; retry, or raise busy_timeout_ms in STORE_URL"
            if "locked" in str(exc) or "busy" in str(exc)
            else "check that the file and its directory are writable and the disk is not full"
        )
        return StoreUnavailableError(f"the SQLite store {self.path} failed: {exc}; {hint}")


LOW_DISK_BYTES = 1024 * 1024  # below this, an I/O failure is taken to be a full disk


def disk_full_problem(path: Path, exc: BaseException) -> str | None:
    """'the disk is full' wording for an SQLite failure caused by a full disk, else None."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code not in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, 0):
        return None
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None
    if code != sqlite3.SQLITE_FULL and free >= LOW_DISK_BYTES:
        return None
    return (
        f"the disk holding {path.parent} is full ({free} bytes free); free some space there "
        "(or move STORE_URL to a disk with room), then try again"
    )


def _remove_empty(path: Path) -> None:
    """Delete `path` (and its -wal/-shm companions) if a failed first open left it empty."""
    try:
        if path.stat().st_size != 0:
            return
        path.unlink()
    except OSError:
        return
    for companion in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            companion.unlink(missing_ok=True)
        except OSError:
            continue


async def _close_quietly(conn: aiosqlite.Connection) -> None:
    try:
        await conn.close()
    except Exception as exc:  # closing must release the thread even if the file went bad
        logger.warning("closing a SQLite connection failed: %s", exc)
