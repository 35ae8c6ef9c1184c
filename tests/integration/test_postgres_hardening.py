"""Postgres under Supabase's default privileges: RLS forced, no TRUNCATE/TRIGGER/REFERENCES for API
roles, nothing on the migrations table, and the owner's own path still working (issue 14, items 4 and 6)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import psycopg
import pytest
from psycopg import AsyncConnection, errors, sql

from memory.settings import Settings
from stores import open_store
from stores.postgres import PostgresStore
from tests.contract import factories as f
from tests.fixtures.postgres_servers import PostgresServer

TABLES = ["profiles", "memories", "chatkit_threads", "chatkit_items", "chatkit_attachments", "memory_changes"]
ALL_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]


@dataclass(frozen=True)
class SupabaseLike:
    owner_url: str  # a non-superuser that owns the tables, like Supabase's `postgres`
    admin_url: str


@pytest.fixture
def supabase_like(postgres_server: PostgresServer) -> Iterator[SupabaseLike]:
    """A fresh database whose owner has Supabase's default privileges on schema public."""
    dbname = postgres_server.create_database()
    owner = f"owner_{uuid.uuid4().hex[:10]}"
    admin_url = postgres_server.url(dbname)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for role in ("anon", "authenticated", "service_role"):
            if admin.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone() is None:
                with contextlib.suppress(errors.DuplicateObject):  # roles are cluster-wide
                    admin.execute(sql.SQL("create role {} nologin noinherit").format(sql.Identifier(role)))
        admin.execute(sql.SQL("create role {} login").format(sql.Identifier(owner)))
        admin.execute(
            sql.SQL("grant create on database {} to {}").format(sql.Identifier(dbname), sql.Identifier(owner))
        )
        admin.execute(sql.SQL("grant create on schema public to {}").format(sql.Identifier(owner)))
        admin.execute(sql.SQL("grant authenticated to {}").format(sql.Identifier(owner)))
    owner_url = postgres_server.url(dbname, user=owner)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            "alter default privileges in schema public grant all on tables to anon, authenticated, service_role"
        )
    try:
        yield SupabaseLike(owner_url=owner_url, admin_url=admin_url)
    finally:
        postgres_server.drop_database(dbname)
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(owner)))


async def _migrated(env: SupabaseLike) -> None:
    async with await open_store(env.owner_url, settings=Settings(store_rls="auto")) as store:
        assert isinstance(store, PostgresStore)


async def test_api_roles_cannot_truncate_or_touch_the_migrations_table(supabase_like: SupabaseLike) -> None:
    await _migrated(supabase_like)
    user_a, user_b = str(uuid.uuid4()), str(uuid.uuid4())
    async with await open_store(supabase_like.owner_url, settings=Settings(store_rls="auto")) as store:
        for user in (user_a, user_b):
            await store.threads.save_thread(f.thread("thr_1", title=user), f.ctx(user))
    async with await AsyncConnection.connect(supabase_like.admin_url, autocommit=True) as admin:
        for table in TABLES:
            for privilege in ("TRUNCATE", "TRIGGER", "REFERENCES"):
                cursor = await admin.execute(
                    "select has_table_privilege('authenticated', %s, %s)", [f"public.{table}", privilege]
                )
                assert (await cursor.fetchone()) == (False,), (table, privilege)
            for privilege in ALL_PRIVILEGES:
                cursor = await admin.execute(
                    "select has_table_privilege('anon', %s, %s)", [f"public.{table}", privilege]
                )
                assert (await cursor.fetchone()) == (False,), ("anon", table, privilege)
        for role in ("anon", "authenticated"):
            for privilege in ALL_PRIVILEGES:
                cursor = await admin.execute(
                    "select has_table_privilege(%s, 'public.memory_agent_migrations', %s)", [role, privilege]
                )
                assert (await cursor.fetchone()) == (False,), (role, privilege)

    # the attack from the report: as `authenticated`, wipe every user's threads
    async with await AsyncConnection.connect(supabase_like.owner_url) as conn:
        await conn.execute("set local role authenticated")
        await conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps({"sub": user_a})])
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("truncate public.chatkit_threads cascade")
    async with await AsyncConnection.connect(supabase_like.admin_url) as admin:
        cursor = await admin.execute("select count(*) from public.chatkit_threads")
        assert (await cursor.fetchone()) == (2,)


async def test_rls_is_forced_on_every_table(supabase_like: SupabaseLike) -> None:
    await _migrated(supabase_like)
    async with await AsyncConnection.connect(supabase_like.admin_url) as admin:
        cursor = await admin.execute(
            "select relname, relrowsecurity, relforcerowsecurity from pg_class "
            "where relnamespace = 'public'::regnamespace and relname = any(%s)",
            [[*TABLES, "memory_agent_migrations"]],
        )
        rows = await cursor.fetchall()
    assert len(rows) == len(TABLES) + 1
    assert all(enabled and forced for _, enabled, forced in rows), rows


@pytest.mark.parametrize("rls", ["off", "auto"])
async def test_the_owner_path_keeps_working_with_forced_rls(
    supabase_like: SupabaseLike, rls: Literal["off", "auto"]
) -> None:
    await _migrated(supabase_like)
    uuid_user = str(uuid.uuid4())
    other_user = f"caller.{uuid.uuid4().hex[:6]}@example.com"  # not a UUID: always the owner path
    async with await open_store(supabase_like.owner_url, settings=Settings(store_rls=rls)) as store:
        assert isinstance(store, PostgresStore) and store.rls is (rls == "auto")
        for user in (uuid_user, other_user):
            await store.profiles.ensure(user, identity=user)
            await store.memories.remember(user, "preference", "colour", f"{user} likes teal")
            await store.threads.save_thread(f.thread("thr_1", title=user), f.ctx(user))
            await store.threads.add_thread_item("thr_1", f.user_message("msg_1", "thr_1", f.at(0)), f.ctx(user))
            memory = await store.memories.get(user, "preference", "colour")
            assert memory is not None and memory.value == f"{user} likes teal"
            assert (await store.threads.load_thread("thr_1", f.ctx(user))).title == user
            assert len((await store.threads.load_thread_items("thr_1", None, 10, "asc", f.ctx(user))).data) == 1
        # the owner itself, once it claims to be a user, sees that user's rows only
        async with await AsyncConnection.connect(supabase_like.owner_url) as conn:
            await conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps({"sub": uuid_user})])
            cursor = await conn.execute("select distinct user_id from public.memories")
            assert [row[0] for row in await cursor.fetchall()] == [uuid_user]
        await store.forget_user(other_user)
        assert await store.memories.get(other_user, "preference", "colour") is None
        assert await store.memories.get(uuid_user, "preference", "colour") is not None
