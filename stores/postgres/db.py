"""The connection pool and the one way the store talks to Postgres: `Database.run`.

Each store call is ONE round trip and ONE transaction. It starts with one prelude
statement that sets the transaction's `statement_timeout` (see below) and, with the
RLS defence on, switches to the role `authenticated` and sets `request.jwt.claims` to
the user (transaction-local, exactly what PostgREST does), so the policies of
sql/0003_rls.sql hide every other user's rows even from a query that forgot its
`user_id` filter. These settings end with the transaction, so a pooled connection
never carries one user's identity into the next call. Two ways to send it, chosen by
the URL (docs/performance.md has the measurements):

- prepared (the default): each statement is prepared once per pooled connection with
  SQL `PREPARE` (stores/postgres/prepared.py), and a call is ONE simple-protocol Query
  of `EXECUTE`s (prelude first, values bound client-side), which Postgres runs in order
  as one implicit transaction. The statements run with generic plans
  (`plan_cache_mode`, set in the prelude), so the server neither parses nor plans them
  again, until the connection discards its plans to re-make them against grown tables
  (stores/postgres/replan.py). (psycopg's pipeline mode sends the same in one round trip too, but measured
  about one extra `SELECT 1` of Python per call.)
- not prepared (`?prepare=false`, or port 6543 (Supabase's transaction pooler) or 6432
  (PgBouncer's default), or after a call found its prepared statement gone): the
  statements are bound client-side (psycopg's `ClientCursor` quoting, as Django does by
  default) and sent as one simple-protocol Query, which Postgres also runs as one
  implicit transaction. Nothing is prepared on the server, so any pooler works: a
  transaction pooler may hand the next transaction to another server connection, where
  a statement prepared earlier does not exist.

Lost connections: the pool does not ping on every checkout (that would add a round
trip to every call). Instead, when a call fails because its connection broke (server
restart, `pg_terminate_backend`, a pooler dropping us), `run` asks the pool to check
its idle connections (dropping the dead ones, which died with the same event) and
runs the call once more. Every store operation is idempotent (upserts and deletes by
key), so re-running one whose commit may or may not have happened is safe; a call only
returns after the server reported success, so nothing acknowledged is lost. A second
failure raises `StoreUnavailableError`.

A hung server (paused, behind a proxy that stopped forwarding, a network that drops
packets silently) is cut off by one deadline per call, STORE_OP_TIMEOUT: waiting for a
pooled connection, the query and the retry all count against it. On expiry the
connection's socket is shut down under the query, which then fails at once; the
connection is thereby broken and the pool discards it instead of ever handing it to
another call (psycopg's own cancellation would wait up to 10 s on a dead server first).
The server also gets `statement_timeout` for the transaction, so a slow query does not
keep running there after we gave up.

Every other driver error becomes a store error too, so callers never see psycopg's
classes: errors that mean "not now" (the server shutting down or starting up, out of
resources, a read-only database) raise `StoreUnavailableError`, the rest (privileges,
schema, data) `StoreError`. Only `ForeignKeyViolation` passes through, because
`threads.py` turns that race into "thread not found".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import AsyncClientCursor, AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from stores.errors import StoreError, StoreTimeoutError, StoreUnavailableError, closed_error, scrub, timeout_error
from stores.postgres.prepared import PreparedOnConnections
from stores.postgres.replan import DISCARD_PLANS, Replans

logger = logging.getLogger(__name__)

Params = Sequence[Any] | Mapping[str, Any] | None
Statement = tuple[str, Params]
Row = tuple[Any, ...]
_BIND_SQL = "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)"
# The prelude of every call: one statement, one result column (the settings' values
# joined: the driver then builds one column description per call, not four).
# Generic plans, always: our statements are all keyed by the user (and thread) and served
# by the same indexes whatever the values, but for pages Postgres estimates the generic
# plan (rows of "any" thread) far above a custom one and so plans every call afresh,
# which with the RLS policies costs more than running the query (docs/performance.md).
# Transaction-local; it only matters for prepared statements.
_PLAN_SQL = "set_config('plan_cache_mode', 'force_generic_plan', true)"
# Calls keyed by a user read a few of that user's rows through an index. A generic plan
# made while a table was empty scans the whole table, and stays until it is re-planned
# (stores/postgres/replan.py); with sequential scans off it reads at most the user's rows.
# Calls across users (retention sweeps, listing users) keep the planner's own choice.
_KEYED_SQL = "set_config('enable_seqscan', 'off', true)"
_TIMEOUT_AND_BIND_SQL = (
    f"select set_config('statement_timeout', %s, true) || {_PLAN_SQL} || {_KEYED_SQL} "
    "|| set_config('role', 'authenticated', true) || set_config('request.jwt.claims', %s, true)"
)
_RETRIABLE = (errors.SerializationFailure, errors.DeadlockDetected)
# what a transaction pooler the URL did not reveal does to prepared statements
_PREPARED_LOST = (errors.InvalidSqlStatementName, errors.DuplicatePreparedStatement)
_TIMEOUT_SQL = f"select set_config('statement_timeout', %s, true) || {_PLAN_SQL}"
_TIMEOUT_KEYED_SQL = f"{_TIMEOUT_SQL} || {_KEYED_SQL}"
DEFAULT_OP_TIMEOUT = 5.0


@functools.lru_cache(maxsize=4096)  # checked on every call: parse each active user once
def lock_user(user_id: str) -> Statement:
    """The first statement of a write that touches a user's memory trail: one lock per user.

    Concurrent writes of one user otherwise trim the audit trail's oldest rows in
    different orders and deadlock; taking this transaction-level advisory lock before
    touching any row makes them take turns (a user's memory writes are few), and keeps
    the trail at exactly its bound.
    """
    return ("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"memory-agent:user:{user_id}"])


@functools.lru_cache(maxsize=4096)  # checked on every call: parse each active user once
def is_canonical_uuid(user_id: str) -> bool:
    """True for a lower-case hyphenated UUID, the only form `auth.uid()` can return."""
    try:
        return str(uuid.UUID(user_id)) == user_id
    except ValueError:
        return False


class Database:
    """A psycopg pool plus the per-call transaction (user binding, one retry on a lost connection)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        url: str,
        redacted: str,
        *,
        rls: bool,
        rls_required: bool,
        op_timeout: float = DEFAULT_OP_TIMEOUT,
        prepare: bool = True,
    ) -> None:
        self.pool = pool
        self.op_timeout = op_timeout
        self.rls = rls
        self.prepare = prepare
        self._rls_required = rls_required
        self._url = url
        self._redacted = redacted
        self._closed = False
        self._prepared = PreparedOnConnections()
        self._replans = Replans()

    def _binds(self, user_id: str | None) -> bool:
        """Whether this call runs as `authenticated`; ValueError if RLS is required but impossible."""
        if not self.rls or user_id is None:
            return False
        if is_canonical_uuid(user_id):
            return True
        if self._rls_required:
            raise ValueError(
                "STORE_RLS=on needs user ids that are lower-case UUIDs (Supabase's auth.uid() is a UUID); "
                "map identities with memory.identity_to_uuid, or set STORE_RLS=auto to rely on the "
                "application's user filters for other ids"
            )
        return False  # auth.uid() cannot represent this id: the query filters alone isolate it

    def _with_prelude(self, user_id: str | None, statements: Sequence[Statement]) -> list[Statement]:
        """The statements after the prelude: statement_timeout and generic plans; for a user's call no
        sequential scans, and the user binding when RLS applies."""
        timeout = f"{max(1, round(self.op_timeout * 1000))}ms"
        if self._binds(user_id):
            # a canonical UUID needs no JSON escaping (checked by _binds)
            prelude: Statement = (_TIMEOUT_AND_BIND_SQL, [timeout, f'{{"sub": "{user_id}", "role": "authenticated"}}'])
        elif user_id is not None:  # a user id auth.uid() cannot hold (STORE_RLS=auto): the filters isolate it
            prelude = (_TIMEOUT_KEYED_SQL, [timeout])
        else:  # an operator's call across users
            prelude = (_TIMEOUT_SQL, [timeout])
        return [prelude, *statements]

    def script(self, cursor: AsyncClientCursor[Row], user_id: str | None, statements: Sequence[Statement]) -> str:
        """The statements as one SQL text (the unprepared path), prelude first."""
        return ";\n".join(cursor.mogrify(query, params) for query, params in self._with_prelude(user_id, statements))

    async def run(self, user_id: str | None, *statements: Statement) -> list[Row]:
        """Run `statements` in one round trip and one transaction as `user_id`; rows of the last one.

        Retries once if the connection was lost; StoreTimeoutError after STORE_OP_TIMEOUT
        (see the module docstring).
        """
        if self._closed:
            raise closed_error(f"Postgres store at {self._redacted}")
        self._binds(user_id)  # a ValueError before any I/O
        # A caller that gives up early (its own timeout, a cancelled task) must not cost a
        # connection: once the call holds one, it finishes (within STORE_OP_TIMEOUT) in its own
        # task and hands the connection back intact. Only a call still waiting for one is cancelled.
        holding: list[bool] = []
        call = asyncio.ensure_future(self._run(user_id, statements, holding))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            if not holding:
                call.cancel()
            call.add_done_callback(_consume)
            raise

    async def _run(self, user_id: str | None, statements: Sequence[Statement], holding: list[bool]) -> list[Row]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.op_timeout
        for attempt in (1, 2):
            conn: AsyncConnection | None = None
            try:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._timeout()
                async with self.pool.connection(timeout=remaining) as conn:
                    holding.append(True)
                    return await self._within_deadline(conn, user_id, statements, deadline)
            except PoolClosed:
                raise closed_error(f"Postgres store at {self._redacted}") from None  # closed while waiting
            except PoolTimeout as exc:
                if loop.time() >= deadline - 0.01:
                    raise self._timeout() from None  # every connection busy (or hung) for the whole deadline
                raise self._unavailable(exc) from None
            except _PREPARED_LOST as exc:
                if not self.prepare or attempt == 2:
                    raise self._error(exc) from None
                self.prepare = False  # the failed call was rolled back whole: run it again, unprepared
                logger.warning(
                    "Postgres at %s lost a prepared statement (%s): a transaction pooler is probably in between; "
                    "statements are no longer prepared (add ?prepare=false to STORE_URL to say so up front)",
                    self._redacted,
                    self._reason(exc),
                )
            except _RETRIABLE as exc:
                if attempt == 2:
                    raise self._error(exc) from None
            except errors.ForeignKeyViolation:
                raise  # threads.py: the thread was deleted while an item was being added
            except psycopg.OperationalError as exc:
                if conn is not None and not (conn.broken or conn.closed):
                    raise self._error(exc) from None  # the server answered with an error: not a lost connection
                if attempt == 2:
                    raise self._unavailable(exc) from None
                logger.warning(
                    "Postgres connection to %s lost (%s); checking the pool and retrying once",
                    self._redacted,
                    self._reason(exc),
                )
                await self._check_pool(deadline)
            except psycopg.Error as exc:
                raise self._error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def maintenance(self, statement: str) -> None:
        """Run one statement outside any transaction (VACUUM), as the connecting role; store errors only."""
        try:
            async with self.pool.connection() as conn:
                await conn.execute(statement.encode())
        except PoolClosed:
            raise closed_error(f"Postgres store at {self._redacted}") from None
        except PoolTimeout as exc:
            raise self._unavailable(exc) from None
        except psycopg.Error as exc:
            raise self._error(exc) from None

    async def _within_deadline(
        self, conn: AsyncConnection, user_id: str | None, statements: Sequence[Statement], deadline: float
    ) -> list[Row]:
        """Run the script on `conn`; past `deadline` break the connection and give up.

        A timer shuts the socket down at the deadline, so the pending read wakes at once
        and psycopg fails the query (its own cancellation would first wait on the dead
        server). No task of its own: `run` already shields the call from its caller, and
        a task per call costs as much as a quarter of a fast query (docs/performance.md).
        """
        loop = asyncio.get_running_loop()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            _sever(conn)

        timer = loop.call_at(deadline, expire)
        try:
            rows = await self._execute(conn, user_id, statements)
        except (psycopg.Error, OSError):
            if not expired:
                raise
            _finish(conn)
            raise self._timeout() from None
        except asyncio.CancelledError:  # the loop is shutting down (callers cannot reach a running call)
            _sever(conn)
            raise
        finally:
            timer.cancel()
        if expired:  # the answer came in just as the timer fired: keep it, but not the severed connection
            _finish(conn)
        return rows

    async def _execute(self, conn: AsyncConnection, user_id: str | None, statements: Sequence[Statement]) -> list[Row]:
        if self._replans.due(conn):  # stores/postgres/replan.py
            statements = [(DISCARD_PLANS, None), *statements]
        if self.prepare:
            return await self._send_prepared(conn, user_id, statements)
        return await self._send_script(conn, user_id, statements)

    async def _send_prepared(
        self, conn: AsyncConnection, user_id: str | None, statements: Sequence[Statement]
    ) -> list[Row]:
        """Prepared path: one simple-protocol Query of EXECUTEs, prelude first (= one implicit transaction)."""
        cursor = AsyncClientCursor(conn)
        script = await self._prepared.script(cursor, self._with_prelude(user_id, statements))
        return await _last_rows(cursor, script)

    async def _send_script(
        self, conn: AsyncConnection, user_id: str | None, statements: Sequence[Statement]
    ) -> list[Row]:
        """Unprepared path: one simple-protocol Query holding every statement (= one implicit transaction)."""
        cursor = AsyncClientCursor(conn)
        return await _last_rows(cursor, self.script(cursor, user_id, statements).encode())

    async def _check_pool(self, deadline: float) -> None:
        """Let the pool drop its dead idle connections, without waiting past the deadline for it."""
        check = asyncio.ensure_future(self.pool.check())
        await asyncio.wait({check}, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        check.add_done_callback(_consume)

    def _timeout(self) -> StoreTimeoutError:
        return timeout_error(f"Postgres store at {self._redacted}", self.op_timeout)

    def _reason(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return scrub(text, self._url)

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the Postgres store at {self._redacted} is unreachable ({self._reason(exc)}); "
            "check that the server is running and STORE_URL is right"
        )

    def _error(self, exc: psycopg.Error) -> StoreError:
        """The store error for an error the server (or the driver) reported about this call."""
        reason = f"{type(exc).__name__}: {self._reason(exc)}"
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return StoreUnavailableError(
                f"the Postgres store at {self._redacted} accepts no writes right now ({reason}); the database is "
                "read-only (a replica or standby, or put in read-only mode, e.g. when its disk is full): point "
                "STORE_URL at the primary, or retry once the database accepts writes again"
            )
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailableError(
                f"the Postgres store at {self._redacted} cannot serve the call right now ({reason}); retry shortly "
                "and check the server (shutting down, starting up, or out of connections or disk)"
            )
        return StoreError(
            f"the Postgres store at {self._redacted} rejected the call ({reason}); check that the schema is "
            "migrated (`python -m stores migrate <url>`) and that the STORE_URL user has the privileges it needs"
        )

    async def close(self) -> None:
        self._closed = True
        await self.pool.close()


async def _last_rows(cursor: AsyncClientCursor[Row], script: bytes) -> list[Row]:
    """Run a multi-statement Query; the rows of its last statement."""
    await cursor.execute(script)
    rows: list[Row] = []
    while True:
        rows = await cursor.fetchall() if cursor.description is not None else []
        if not cursor.nextset():
            return rows


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve a background task's outcome so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _sever(conn: AsyncConnection) -> None:
    """Shut the connection's socket down: the pending read wakes with EOF and libpq marks it broken."""
    with contextlib.suppress(Exception):
        fd = conn.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


def _finish(conn: AsyncConnection) -> None:
    """Close a severed connection now, so the pool discards it instead of handing it out again."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()
