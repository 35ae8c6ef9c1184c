"""The Postgres backend (`postgresql://` / `postgres://`: Supabase, Neon, self-hosted).

`open` checks the server answers, applies the migrations in `sql/` when
STORE_MIGRATE_ON_OPEN is set (the default), decides whether store transactions run
as `authenticated` (STORE_RLS), then opens one connection pool for the store.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from memory.settings import Settings
from stores.errors import StoreError, StoreUnavailableError, scrub
from stores.postgres.config import APPLICATION_NAME, PostgresConfig, parse_url
from stores.postgres.db import Database
from stores.postgres.migrations import MigrationError, migrate, missing_tables, setup_error
from stores.postgres.store import PostgresStore

logger = logging.getLogger(__name__)

# finish before open_store's own deadline (the whole connect timeout), so the user sees
# our specific reason rather than a bare timeout
_OPEN_DEADLINE_SHARE = 0.9
_POOL_NUMBERS = itertools.count(1)  # each pool's tasks are named `<pool name>-worker-N`

_CAN_BIND_SQL = """
select case when exists (select from pg_catalog.pg_roles where rolname = 'authenticated')
            then pg_has_role(current_user, 'authenticated', 'MEMBER') else false end,
       exists (select from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
               where n.nspname = 'auth' and p.proname = 'uid')
"""


def connection_kwargs(config: PostgresConfig) -> dict[str, Any]:
    """psycopg connection options: autocommit (transactions are explicit), and psycopg never prepares.

    Where the config allows, the store prepares its statements itself, with SQL PREPARE
    (stores/postgres/prepared.py).
    """
    return {"autocommit": True, "prepare_threshold": None}


async def connect(url: str, timeout: float) -> AsyncConnection:  # noqa: ASYNC109 - also libpq's connect_timeout
    """One direct connection, or StoreUnavailableError naming the redacted URL within `timeout`."""
    config = parse_url(url)
    try:
        return await asyncio.wait_for(
            AsyncConnection.connect(
                config.conninfo, connect_timeout=max(2, math.ceil(timeout)), **connection_kwargs(config)
            ),
            timeout,
        )
    except (TimeoutError, OSError, psycopg.Error) as exc:
        text = str(exc).strip()
        reason = scrub(text.splitlines()[0] if text else f"no answer within {timeout:g} s", url)
        raise StoreUnavailableError(
            f"cannot connect to the Postgres store at {config.redacted} ({reason}); check that the server is "
            "running and that STORE_URL's host, port, user, password and database are right"
        ) from None


async def _rls_enabled(conn: AsyncConnection, mode: str, redacted: str) -> bool:
    if mode == "off":
        return False
    cursor = await conn.execute(_CAN_BIND_SQL)
    row = await cursor.fetchone()
    possible = bool(row and row[0] and row[1])
    if mode == "on" and not possible:
        raise StoreError(
            f"STORE_RLS=on, but the connecting user of {redacted} cannot run as role `authenticated` "
            "(role or auth.uid() missing, or no membership): apply the migrations "
            "(`python -m stores migrate <url>`), or `grant authenticated to <user>`, or set STORE_RLS=auto"
        )
    if not possible:
        logger.info("Postgres RLS defence off for %s: role `authenticated` is not available", redacted)
    return possible


async def open(url: str, settings: Settings) -> PostgresStore:
    """Open the store at a `postgresql://` URL (our parameters: `prepare`, `pool_max`).

    Everything, pool included, finishes within a share of STORE_CONNECT_TIMEOUT. A
    server that cannot be reached raises StoreUnavailableError; a database that
    answers but cannot be used as configured (privileges, read-only, missing tables)
    raises StoreError, which STORE_FALLBACK=memory never hides.
    """
    config = parse_url(url)
    timeout = settings.store_connect_timeout
    deadline = asyncio.get_running_loop().time() + timeout * _OPEN_DEADLINE_SHARE
    conn = await connect(url, timeout * _OPEN_DEADLINE_SHARE)
    try:
        if settings.store_migrate_on_open:
            await migrate(conn)
        else:
            missing = await missing_tables(conn)
            if missing:
                raise MigrationError(
                    f"the database of {config.redacted} has no table(s) {', '.join(missing)}: run "
                    "`python -m stores migrate <url>` (or apply sql/*.sql in the Supabase SQL editor), "
                    "or set STORE_MIGRATE_ON_OPEN=true"
                )
        try:
            rls = await _rls_enabled(conn, settings.store_rls, config.redacted)
        except psycopg.Error as exc:
            raise setup_error(exc, conn, "checking the RLS role") from None
    finally:
        await conn.close()
    pool = AsyncConnectionPool(
        config.conninfo,
        # connect_timeout bounds every reconnect attempt of the pool's workers as well
        kwargs={**connection_kwargs(config), "connect_timeout": max(2, math.ceil(timeout))},
        min_size=1,
        max_size=config.pool_max,
        open=False,
        timeout=timeout,
        # give up reconnect back-off chains quickly: the next call then starts a fresh attempt,
        # so a server that is back is used at once instead of after minutes of back-off
        reconnect_timeout=max(2.0, timeout),
        name=f"{APPLICATION_NAME}-{next(_POOL_NUMBERS)}",
    )
    remaining = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        async with asyncio.timeout(remaining):
            await pool.open(wait=True, timeout=remaining)
    except BaseException as exc:  # also open_store's deadline cancelling us: never leave pool tasks behind
        await _discard(pool)
        if not isinstance(exc, Exception):
            raise
        reason = (
            f"no connection within {remaining:.1f} s of STORE_CONNECT_TIMEOUT={timeout:g} s"
            if isinstance(exc, TimeoutError)
            else str(exc)
        )
        raise StoreUnavailableError(
            f"cannot open a connection pool to {config.redacted} ({scrub(reason, url)}); "
            "check that the server is running and accepts more connections"
        ) from None
    db = Database(
        pool,
        url,
        config.redacted,
        rls=rls,
        rls_required=settings.store_rls == "on",
        op_timeout=settings.store_op_timeout,
        prepare=config.prepare,
    )
    return PostgresStore(
        db, config.redacted, erase_vacuum=settings.store_erase_vacuum, url=url, connect_timeout=timeout
    )


async def _discard(pool: AsyncConnectionPool) -> None:
    """Close a pool that did not open, and end its tasks now.

    psycopg_pool's workers survive cancellation, and one may be waiting on a server
    that accepted TCP but never answers. Cancelling them aborts that attempt; closing
    the pool then stops them.
    """
    tasks = [task for task in asyncio.all_tasks() if task.get_name().startswith(f"{pool.name}-")]
    for task in tasks:
        task.cancel()
    try:
        await pool.close(timeout=2.0)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves
        # otherwise it is the CancelledError of the workers cancelled above, re-raised by close()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["MigrationError", "PostgresStore", "connect", "open"]
