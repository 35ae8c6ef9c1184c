"""sql/ migrations against a real, empty Postgres database: first run, re-run, concurrent runners, CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import psycopg
import pytest
from psycopg import AsyncConnection

from memory.settings import Settings
from stores import StoreError, StoreUnavailableError, open_store
from stores.postgres import MigrationError, connect
from stores.postgres.migrations import LOCK_KEY, migrate, migrations
from tests.fixtures.postgres_servers import PostgresServer, free_port

REPO = Path(__file__).resolve().parents[2]
EXPECTED = [
    "0001_auth_compat",
    "0002_tables",
    "0003_rls",
    "0004_force_rls_revoke",
    "0005_memory_provenance",
    "0006_search_index",
    "0007_memory_changes",
    "0008_search_best_postings",
    "0009_search_term_counts",
]
TABLES = {"profiles", "memories", "chatkit_threads", "chatkit_items", "chatkit_attachments", "memory_changes"}


async def _tables(url: str) -> set[str]:
    async with await AsyncConnection.connect(url) as conn:
        cursor = await conn.execute("select tablename from pg_tables where schemaname = 'public'")
        return {row[0] for row in await cursor.fetchall()}


async def _versions(url: str) -> list[tuple[str, object]]:
    async with await AsyncConnection.connect(url) as conn:
        cursor = await conn.execute("select version, applied_at from public.memory_agent_migrations order by version")
        return list(await cursor.fetchall())


async def _migrate(url: str) -> list[str]:
    conn = await connect(url, 5)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def test_shipped_files_are_numbered_and_optional_trigger_is_not_among_them() -> None:
    labels = [m.label for m in migrations()]
    assert labels == EXPECTED
    assert resources.files("sql").joinpath("optional/handle_new_user.sql").is_file()


async def test_migrate_from_empty_creates_schema_with_rls(empty_postgres_url: str) -> None:
    assert not (await _tables(empty_postgres_url)) & TABLES

    applied = await _migrate(empty_postgres_url)

    assert applied == EXPECTED
    assert await _tables(empty_postgres_url) >= TABLES
    assert [v for v, _ in await _versions(empty_postgres_url)] == [label[:4] for label in EXPECTED]
    async with await AsyncConnection.connect(empty_postgres_url) as conn:
        cursor = await conn.execute(
            "select relname, relrowsecurity from pg_class where relname = any(%s)", [sorted(TABLES)]
        )
        assert dict(await cursor.fetchall()) == dict.fromkeys(TABLES, True)
        cursor = await conn.execute("select to_regprocedure('auth.uid()') is not null")
        assert (await cursor.fetchone()) == (True,)


async def test_rerun_is_a_noop(empty_postgres_url: str) -> None:
    await _migrate(empty_postgres_url)
    before = await _versions(empty_postgres_url)

    assert await _migrate(empty_postgres_url) == []
    assert await _versions(empty_postgres_url) == before  # nothing re-applied, applied_at unchanged


async def test_two_runners_at_once_serialise_and_apply_once(empty_postgres_url: str) -> None:
    # Hold the runners' lock so both are provably waiting at the same time, then let go.
    async with await AsyncConnection.connect(empty_postgres_url, autocommit=True) as blocker:
        await blocker.execute("select pg_advisory_lock(%s)", [LOCK_KEY])
        runners = [asyncio.create_task(_migrate(empty_postgres_url)) for _ in range(2)]
        deadline = time.monotonic() + 10
        while True:
            cursor = await blocker.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and not granted "
                "and database = (select oid from pg_database where datname = current_database())"
            )
            waiting = (await cursor.fetchone() or (0,))[0]
            if waiting == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert waiting == 2
        await blocker.execute("select pg_advisory_unlock(%s)", [LOCK_KEY])
        results = await asyncio.gather(*runners)

    assert sorted(results, key=len) == [[], EXPECTED]
    assert [v for v, _ in await _versions(empty_postgres_url)] == [label[:4] for label in EXPECTED]


async def test_foreign_profiles_table_fails_clearly_and_applies_nothing(empty_postgres_url: str) -> None:
    async with await AsyncConnection.connect(empty_postgres_url, autocommit=True) as conn:
        await conn.execute("create table public.profiles (id uuid primary key, username text)")

    with pytest.raises(MigrationError) as caught:
        await _migrate(empty_postgres_url)

    message = str(caught.value)
    assert "sql/0002_tables.sql" in message and "public.profiles already exists" in message
    assert "rename or drop" in message
    tables = await _tables(empty_postgres_url)
    assert "memory_agent_migrations" not in tables and not tables & (TABLES - {"profiles"})


async def test_open_without_auto_migration_names_the_command(empty_postgres_url: str) -> None:
    settings = Settings(store_migrate_on_open=False)

    with pytest.raises(Exception) as caught:
        await open_store(empty_postgres_url, settings=settings)

    assert "python -m stores migrate" in str(caught.value)
    assert "chatkit_threads" in str(caught.value)


async def test_open_applies_migrations_by_default(empty_postgres_url: str) -> None:
    async with await open_store(empty_postgres_url, settings=Settings()) as store:
        await store.memories.remember(str(uuid.uuid4()), "fact", "k", "v")
    assert [v for v, _ in await _versions(empty_postgres_url)] == [label[:4] for label in EXPECTED]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "stores", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


def test_cli_migrate_prints_what_it_applied(empty_postgres_url: str) -> None:
    first = _cli("migrate", empty_postgres_url)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(EXPECTED)} migration(s)" in first.stdout
    for label in EXPECTED:
        assert label in first.stdout

    second = _cli("migrate", empty_postgres_url)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout


def test_cli_unreachable_server_fails_fast_without_leaking_the_password() -> None:
    url = f"postgresql://app:s3cr3t-pw@127.0.0.1:{free_port()}/nowhere"
    started = time.monotonic()

    result = _cli("migrate", url, timeout=30)

    assert result.returncode == 1
    assert time.monotonic() - started < 15
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert "postgresql://app:***@127.0.0.1" in result.stderr


def test_cli_rejects_non_postgres_urls() -> None:
    result = _cli("migrate", "redis://127.0.0.1:6379/0")
    assert result.returncode == 2
    assert "not a Postgres URL" in result.stderr


async def test_optional_trigger_creates_profile_and_agent_still_sees_first_login(empty_postgres_url: str) -> None:
    await _migrate(empty_postgres_url)
    async with await AsyncConnection.connect(empty_postgres_url, autocommit=True) as conn:
        cursor = await conn.execute("select to_regprocedure('public.handle_new_user()') is null")
        assert (await cursor.fetchone()) == (True,)  # the runner does not install the optional trigger
        # stand-in for Supabase's auth.users, then the optional file exactly as shipped
        await conn.execute("create table auth.users (id uuid primary key, email text)")
        trigger_sql = resources.files("sql").joinpath("optional/handle_new_user.sql").read_text()
        await conn.execute(trigger_sql.encode())
        await conn.execute(trigger_sql.encode())  # idempotent
        user_id = str(uuid.uuid4())
        await conn.execute("insert into auth.users (id, email) values (%s, %s)", [user_id, "new@example.com"])

    async with await open_store(empty_postgres_url, settings=Settings()) as store:
        created = await store.profiles.get(user_id)
        assert created is not None and created.email == "new@example.com"
        first = await store.profiles.ensure(user_id, identity="voice-identity")
        again = await store.profiles.ensure(user_id)

    assert first.is_first_login is True and again.is_first_login is False
    assert first.created_at == created.created_at
    assert (again.identity, again.email) == ("voice-identity", "new@example.com")


async def test_non_superuser_owner_can_migrate_and_runs_under_rls(postgres_server: PostgresServer) -> None:
    role = f"app_{uuid.uuid4().hex[:10]}"
    dbname = None
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create role "{role}" login createrole')
    try:
        dbname = postgres_server.create_database()
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
            admin.execute(f'alter database "{dbname}" owner to "{role}"')
            admin.execute(f'grant create on database "{dbname}" to "{role}"')
        url = postgres_server.url(dbname, user=role)
        with psycopg.connect(postgres_server.url(dbname), autocommit=True) as admin:
            admin.execute(f'alter schema public owner to "{role}"')

        assert await _migrate(url) == EXPECTED
        async with await open_store(url, settings=Settings(store_rls="on")) as store:
            assert store.rls is True  # type: ignore[attr-defined]
            a, b = str(uuid.uuid4()), str(uuid.uuid4())
            await store.memories.remember(a, "fact", "k", "alice")
            await store.memories.remember(b, "fact", "k", "bob")
            rows = await store.run_as(a, "select current_user, value from public.memories")  # type: ignore[attr-defined]
            assert rows == [("authenticated", "alice")]
    finally:
        if dbname:
            postgres_server.drop_database(dbname)
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop role if exists "{role}"')


@pytest.fixture
def unprivileged_url(postgres_server: PostgresServer, empty_postgres_url: str) -> Iterator[str]:
    """The fresh database, reached as a login role without CREATE on schema public (Postgres 15's default)."""
    role = f"app_{uuid.uuid4().hex[:10]}"
    dbname = empty_postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create role "{role}" login')
    with psycopg.connect(empty_postgres_url, autocommit=True) as owner:
        owner.execute(f'revoke create on schema public from public, "{role}"')
    try:
        yield postgres_server.url(dbname, user=role)
    finally:
        postgres_server.drop_database(dbname)  # the role cannot be dropped while it may connect
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop role if exists "{role}"')


async def test_user_without_create_privilege_is_a_configuration_error_never_a_fallback(unprivileged_url: str) -> None:
    with pytest.raises(StoreError) as caught:
        await open_store(unprivileged_url, settings=Settings(store_fallback="memory"))

    assert not isinstance(caught.value, StoreUnavailableError)
    message = str(caught.value)
    assert "InsufficientPrivilege" in message and "permission denied for schema public" in message
    assert "STORE_MIGRATE_ON_OPEN=false" in message and "python -m stores migrate" in message


def test_cli_migrate_without_create_privilege_explains_without_a_traceback(unprivileged_url: str) -> None:
    result = _cli("migrate", unprivileged_url)

    assert result.returncode == 1
    assert result.stderr.startswith("error: applying the migrations")
    assert "permission denied for schema public" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("password", ["Ab/cD9xy", "p#ss-word", "wh?tev3r"])
def test_cli_migrate_with_unencoded_special_characters_asks_to_percent_encode(password: str) -> None:
    result = _cli("migrate", f"postgresql://app:{password}@127.0.0.1:{free_port()}/app")

    assert result.returncode == 1
    assert "percent-encode" in result.stderr and "postgresql://app:***@127.0.0.1" in result.stderr
    assert password not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
