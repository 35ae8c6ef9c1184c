"""Row Level Security from sql/0003_rls.sql, as Supabase clients and as the store's own transactions."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import AsyncConnection, errors

from memory.settings import Settings
from stores import UserStore, open_store
from stores.postgres import PostgresStore
from tests.contract import factories as f
from tests.fixtures.postgres_servers import PostgresServer

PER_USER_TABLES = {
    "chatkit_threads": "user_id",
    "chatkit_items": "user_id",
    "chatkit_attachments": "user_id",
    "memories": "user_id",
    "memory_changes": "user_id",
    "memory_terms": "user_id",
    "memory_counts": "user_id",
    "memory_term_counts": "user_id",
    "profiles": "id",
}


async def _seed(store: UserStore, user_id: str, label: str) -> None:
    context = f.ctx(user_id)
    await store.threads.save_thread(f.thread("thr_shared", title=label), context)
    await store.threads.add_thread_item("thr_shared", f.user_message("msg_1", "thr_shared", f.at(0)), context)
    await store.threads.save_attachment(f.file_attachment("atc_1", "thr_shared"), context)
    await store.memories.remember(user_id, "preference", "colour", f"{label} likes teal")
    await store.profiles.ensure(user_id, identity=label)


@pytest.fixture
async def pg_store(postgres_store_url: str) -> AsyncIterator[PostgresStore]:
    store = await open_store(postgres_store_url, settings=Settings(store_rls="auto"))
    assert isinstance(store, PostgresStore)
    async with store:
        yield store


@pytest.fixture
async def seeded(pg_store: PostgresStore, user_a: str, user_b: str) -> PostgresStore:
    await _seed(pg_store, user_a, "alice")
    await _seed(pg_store, user_b, "bob")
    return pg_store


async def _as_role(url: str, role: str, sub: str | None) -> AsyncConnection:
    """A connection inside a transaction running as `role` with claims for `sub`, as PostgREST does."""
    conn = await AsyncConnection.connect(url)
    await conn.execute(f"set local role {role}")
    if sub is not None:
        await conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps({"sub": sub})])
    return conn


async def test_authenticated_reads_only_own_rows(postgres_store_url: str, seeded: PostgresStore, user_a: str) -> None:
    conn = await _as_role(postgres_store_url, "authenticated", user_a)
    try:
        for table, column in PER_USER_TABLES.items():
            cursor = await conn.execute(f"select distinct {column} from public.{table}")
            assert await cursor.fetchall() == [(user_a,)], table
    finally:
        await conn.close()


async def test_authenticated_cannot_update_or_delete_another_users_rows(
    postgres_store_url: str, seeded: PostgresStore, user_a: str, user_b: str
) -> None:
    conn = await _as_role(postgres_store_url, "authenticated", user_a)
    try:
        for table, column in PER_USER_TABLES.items():
            cursor = await conn.execute(f"update public.{table} set {column} = {column} where {column} = %s", [user_b])
            assert cursor.rowcount == 0, table
            cursor = await conn.execute(f"delete from public.{table} where {column} = %s", [user_b])
            assert cursor.rowcount == 0, table
        # moving one's own row to another user is refused by WITH CHECK
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("update public.memories set user_id = %s where user_id = %s", [user_b, user_a])
        await conn.rollback()
    finally:
        await conn.close()

    # B's data is untouched
    memory, profile = await seeded.memories.get(user_b, "preference", "colour"), await seeded.profiles.get(user_b)
    assert memory is not None and memory.value == "bob likes teal"
    assert profile is not None and profile.identity == "bob"
    assert (await seeded.threads.load_thread("thr_shared", f.ctx(user_b))).title == "bob"


async def test_authenticated_cannot_insert_rows_for_another_user(
    postgres_store_url: str, seeded: PostgresStore, user_a: str, user_b: str
) -> None:
    conn = await _as_role(postgres_store_url, "authenticated", user_a)
    try:
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            await conn.execute(
                "insert into public.memories (user_id, category, key, id, value, created_at, updated_at) "
                "values (%s, 'fact', 'planted', 'mem_x', 'planted by A', now(), now())",
                [user_b],
            )
    finally:
        await conn.close()
    assert await seeded.memories.get(user_b, "fact", "planted") is None


async def test_authenticated_without_claims_sees_nothing(postgres_store_url: str, seeded: PostgresStore) -> None:
    conn = await _as_role(postgres_store_url, "authenticated", None)
    try:
        for table in PER_USER_TABLES:
            cursor = await conn.execute(f"select count(*) from public.{table}")
            assert await cursor.fetchone() == (0,), table
    finally:
        await conn.close()


async def test_anon_sees_nothing(postgres_store_url: str, seeded: PostgresStore, user_a: str) -> None:
    for table in PER_USER_TABLES:
        conn = await _as_role(postgres_store_url, "anon", user_a)  # even with a user's claims
        try:
            with pytest.raises(errors.InsufficientPrivilege):
                await conn.execute(f"select * from public.{table}")
        finally:
            await conn.close()


async def test_store_transaction_enforces_isolation_without_a_filter(
    postgres_store_url: str, seeded: PostgresStore, user_a: str, user_b: str
) -> None:
    """Defence in depth: a query that forgot `where user_id = ...` still sees only the bound user."""
    assert seeded.rls is True
    # the rows of both users are there (seen by the unrestricted owner connection)...
    async with await AsyncConnection.connect(postgres_store_url) as owner:
        cursor = await owner.execute(
            "select distinct user_id from public.memories where user_id = any(%s)", [[user_a, user_b]]
        )
        assert {row[0] for row in await cursor.fetchall()} == {user_a, user_b}

    # ...but run the way the store runs its calls, bound to A, unfiltered queries reach A's rows only
    for table, column in PER_USER_TABLES.items():
        assert await seeded.run_as(user_a, f"select distinct {column} from public.{table}") == [(user_a,)], table
    forgot_filter = "delete from public.memories where key = 'colour' returning user_id"
    assert await seeded.run_as(user_a, forgot_filter) == [(user_a,)]
    assert await seeded.memories.get(user_a, "preference", "colour") is None
    assert await seeded.memories.get(user_b, "preference", "colour") is not None


async def test_statements_prepared_by_an_unbound_call_obey_the_policies_when_bound(
    postgres_store_url: str, user_a: str, user_b: str
) -> None:
    """Statements are prepared once per connection, as the connecting role; a bound call still gets the policies."""
    async with await open_store(f"{postgres_store_url}?pool_max=1", settings=Settings(store_rls="auto")) as store:
        assert isinstance(store, PostgresStore)
        await _seed(store, user_a, "alice")
        await _seed(store, user_b, "bob")
        both = sorted([user_a, user_b])
        unfiltered = "select distinct user_id from public.memories where user_id = any(%s) order by 1"
        for _ in range(3):  # same pooled connection, same prepared statement, alternately unbound and bound
            assert await store._db.run(None, (unfiltered, [both])) == [(user,) for user in both]
            assert await store._db.run(user_a, (unfiltered, [both])) == [(user_a,)]


async def test_store_rls_off_uses_the_owner_connection(
    postgres_store_url: str, seeded: PostgresStore, user_a: str, user_b: str
) -> None:
    async with await open_store(postgres_store_url, settings=Settings(store_rls="off")) as store:
        assert isinstance(store, PostgresStore) and store.rls is False
        rows = await store.run_as(user_a, "select distinct user_id from public.memories")
        assert {user_a, user_b} <= {row[0] for row in rows}
        # the application filters still isolate users
        memory = await store.memories.get(user_a, "preference", "colour")
        assert memory is not None and memory.value == "alice likes teal"


async def test_rls_on_rejects_ids_auth_uid_cannot_represent(postgres_store_url: str) -> None:
    async with await open_store(postgres_store_url, settings=Settings(store_rls="on")) as store:
        with pytest.raises(ValueError, match="STORE_RLS=on needs user ids that are lower-case UUIDs"):
            await store.memories.remember("alice@example.com", "fact", "k", "v")
        with pytest.raises(ValueError, match="lower-case UUIDs"):
            await store.memories.remember(str(uuid.uuid4()).upper(), "fact", "k", "v")


async def test_rls_auto_still_serves_non_uuid_ids_through_the_filters(postgres_store_url: str) -> None:
    async with await open_store(postgres_store_url, settings=Settings(store_rls="auto")) as store:
        user_id = f"caller.{uuid.uuid4().hex[:8]}@example.com"
        await store.memories.remember(user_id, "fact", "k", "v")
        memory = await store.memories.get(user_id, "fact", "k")
        assert memory is not None and memory.value == "v"


async def test_rls_on_fails_at_open_when_the_user_cannot_become_authenticated(
    postgres_server: PostgresServer, postgres_store_url: str
) -> None:
    role = f"nomember_{uuid.uuid4().hex[:10]}"
    dbname = postgres_store_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_store_url, autocommit=True) as admin:
        admin.execute(f'create role "{role}" login')
        admin.execute(f'grant select, insert, update, delete on all tables in schema public to "{role}"')
    try:
        url = postgres_server.url(dbname, user=role)
        with pytest.raises(Exception, match="STORE_RLS=on") as caught:
            await open_store(url, settings=Settings(store_rls="on", store_migrate_on_open=False))
        assert "grant authenticated to" in str(caught.value)
        async with await open_store(url, settings=Settings(store_rls="auto", store_migrate_on_open=False)) as store:
            assert isinstance(store, PostgresStore) and store.rls is False
    finally:
        with psycopg.connect(postgres_store_url, autocommit=True) as admin:
            admin.execute(f'drop owned by "{role}"')
            admin.execute(f'drop role "{role}"')
