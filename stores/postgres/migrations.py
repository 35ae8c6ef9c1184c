"""Apply the numbered files in `sql/` once each, in order, under an advisory lock.

Everything runs in ONE transaction holding `pg_advisory_xact_lock`, so two runners
(two app instances starting together, or the CLI next to the app) serialise: the
second waits, then finds nothing left to apply. A transaction-level lock also works
through a transaction pooler, where a session-level lock could be released on a
different server connection. Files are idempotent, so a database set up by hand in the
Supabase SQL editor is simply recorded on the first run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import AsyncConnection, errors

from stores.errors import StoreError, StoreUnavailableError
from stores.postgres.search_index import index_existing

logger = logging.getLogger(__name__)

VERSIONS_TABLE = "public.memory_agent_migrations"
LOCK_KEY = 0x4D454D4147454E54  # "MEMAGENT": any fixed bigint, shared by every runner
_FILE_RE = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")
# data steps that need Python (the search tokeniser), run right after their file, same transaction
_AFTER: dict[str, Callable[[AsyncConnection], Awaitable[None]]] = {"0006": index_existing}
_REQUIRED_TABLES = (
    "profiles",
    "memories",
    "chatkit_threads",
    "chatkit_items",
    "chatkit_attachments",
    "memory_changes",
)


class MigrationError(StoreError):
    """A migration file failed; the database is left as it was before the run."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The migration files shipped in the `sql` package, by version (sql/optional/ is not included)."""
    found: list[Migration] = []
    for entry in resources.files("sql").iterdir():
        match = _FILE_RE.fullmatch(entry.name)
        if match and entry.is_file():
            found.append(Migration(match["version"], match["name"], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: AsyncConnection) -> list[str]:
    """Apply what is missing; return the labels applied (empty when up to date).

    `conn` must be in autocommit mode (no transaction open); the whole run is one
    transaction, so a failing file leaves the database as it was. Raises StoreError
    (a lost connection: StoreUnavailableError), never a driver error.
    """
    try:
        return await _migrate(conn)
    except psycopg.Error as exc:
        raise setup_error(exc, conn, "applying the migrations") from None


async def _migrate(conn: AsyncConnection) -> list[str]:
    pending = migrations()
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(%s)", [LOCK_KEY])
        await conn.execute(
            f"""create table if not exists {VERSIONS_TABLE} (
                  version text primary key,
                  name text not null,
                  checksum text not null,
                  applied_at timestamptz not null default now()
                )"""
        )
        # no policies: with RLS on, API roles (anon/authenticated) can read nothing here
        await conn.execute(f"alter table {VERSIONS_TABLE} enable row level security")
        cursor = await conn.execute(f"select version, checksum from {VERSIONS_TABLE}")
        applied: dict[str, str] = {version: checksum for version, checksum in await cursor.fetchall()}
        done: list[str] = []
        for migration in pending:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    logger.warning(
                        "migration %s changed since it was applied; it is not applied again", migration.label
                    )
                continue
            try:
                await conn.execute(migration.sql.encode())  # bytes, no parameters: sent as one script
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    raise  # an outage, not a problem of the file
                raise MigrationError(_explain(migration, exc)) from exc
            after = _AFTER.get(migration.version)
            if after is not None:
                try:
                    await after(conn)
                except psycopg.Error as exc:
                    if conn.broken or conn.closed:
                        raise
                    raise MigrationError(_explain(migration, exc)) from exc
            await conn.execute(
                f"insert into {VERSIONS_TABLE} (version, name, checksum) values (%s, %s, %s)",
                [migration.version, migration.name, migration.checksum],
            )
            done.append(migration.label)
    for label in done:
        logger.info("applied migration %s", label)
    return done


async def missing_tables(conn: AsyncConnection) -> list[str]:
    """The store tables that do not exist (to explain what to run when migrations are off)."""
    try:
        cursor = await conn.execute(
            "select t from unnest(%s::text[]) as t where to_regclass('public.' || t) is null",
            [list(_REQUIRED_TABLES)],
        )
        return [row[0] for row in await cursor.fetchall()]
    except psycopg.Error as exc:
        raise setup_error(exc, conn, "checking the store tables") from None


def setup_error(exc: psycopg.Error, conn: AsyncConnection, doing: str) -> StoreError:
    """A failure while preparing the database, as a store error.

    Only a lost connection or a server that cannot serve now (shutting down, a
    timeout) is an outage; anything else (no privilege, a read-only database, a
    foreign schema) needs the operator, so it is a plain StoreError, which
    STORE_FALLBACK=memory never hides.
    """
    text = str(exc).strip()
    message = exc.diag.message_primary or (text.splitlines()[0] if text else "no details")
    reason = f"{type(exc).__name__}: {message}"
    doing = f"{doing} on {_where(conn)}"
    if conn.broken or conn.closed or isinstance(exc, psycopg.OperationalError):
        return StoreUnavailableError(
            f"{doing} failed: the connection was lost or the server cannot serve now ({reason}); "
            "check that the server is running, then try again"
        )
    if isinstance(exc, errors.InsufficientPrivilege):
        hint = (
            "the STORE_URL user lacks a privilege the migrations need (CREATE on schema public, or owning the "
            "tables): run `python -m stores migrate <url>` once as the database owner (or `grant create on schema "
            "public to <user>`), then start the app with STORE_MIGRATE_ON_OPEN=false"
        )
    elif isinstance(exc, errors.ReadOnlySqlTransaction):
        hint = (
            "the database is read-only (a replica or standby, or in read-only mode): point STORE_URL at the "
            "primary, or migrate the primary and set STORE_MIGRATE_ON_OPEN=false"
        )
    else:
        hint = "fix the cause (see the server log) and try again, or run `python -m stores migrate <url>` by hand"
    return StoreError(f"{doing} failed ({reason}); {hint}")


def _where(conn: AsyncConnection) -> str:
    """`database <name> at <host>:<port>` (no user or password) for messages."""
    try:
        return f"database {conn.info.dbname!r} at {conn.info.host}:{conn.info.port}"
    except psycopg.Error:  # the connection is gone
        return "the Postgres database"


def _explain(migration: Migration, exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    hint = f" (hint: {diag.message_hint})" if diag.message_hint else ""
    return (
        f"migration sql/{migration.label}.sql failed: {message}{hint}; nothing was applied. "
        "Fix the cause and run `python -m stores migrate <url>` again"
    )
