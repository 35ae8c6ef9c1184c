"""The Postgres store when connections die, the server is down, or a pooler sits in between."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import psycopg
import pytest
from psycopg import AsyncConnection

from memory.settings import Settings
from stores import StoreError, StoreUnavailableError, open_store
from stores.errors import StoreClosedError
from stores.postgres import PostgresStore
from stores.postgres.config import APPLICATION_NAME, parse_url
from tests.contract import factories as f
from tests.fixtures.postgres_servers import PostgresServer, free_port, terminate_store_connections


async def test_next_operation_after_terminate_succeeds(postgres_store_url: str, user_a: str) -> None:
    async with await open_store(postgres_store_url, settings=Settings()) as store:
        await store.memories.remember(user_a, "fact", "before", "written before the kill")
        # several idle pooled connections, all of which die together
        await asyncio.gather(*(store.memories.get(user_a, "fact", "before") for _ in range(5)))
        assert await terminate_store_connections(postgres_store_url) >= 1

        memory = await store.memories.get(user_a, "fact", "before")
        assert memory is not None and memory.value == "written before the kill"
        await store.memories.remember(user_a, "fact", "after", "written after the kill")
        assert await terminate_store_connections(postgres_store_url) >= 1
        await store.threads.save_thread(f.thread("thr_after"), f.ctx(user_a))
        assert (await store.threads.load_thread("thr_after", f.ctx(user_a))).id == "thr_after"
        await store.ping()

    async with await open_store(postgres_store_url, settings=Settings()) as fresh:
        assert {m.key for m in await fresh.memories.list(user_a)} == {"before", "after"}


@pytest.mark.slow
async def test_no_acknowledged_write_is_lost_while_connections_are_killed(postgres_store_url: str, user_a: str) -> None:
    acknowledged: list[str] = []
    failed: list[str] = []
    stop = asyncio.Event()

    async with await open_store(postgres_store_url, settings=Settings()) as store:
        await store.threads.save_thread(f.thread("thr_load"), f.ctx(user_a))

        async def writer(worker: int) -> None:
            n = 0
            while not stop.is_set():
                item_id = f"msg_{worker}_{n}"
                n += 1
                try:
                    await store.threads.add_thread_item(
                        "thr_load", f.user_message(item_id, "thr_load", f.at(n)), f.ctx(user_a)
                    )
                except StoreUnavailableError:
                    failed.append(item_id)  # reported to the caller, so not acknowledged
                else:
                    acknowledged.append(item_id)

        async def killer() -> int:
            kills = 0
            for _ in range(10):
                await asyncio.sleep(0.15)
                kills += await terminate_store_connections(postgres_store_url)
            stop.set()
            return kills

        kills, *_ = await asyncio.gather(killer(), *(writer(w) for w in range(4)))
        assert kills is not None and kills >= 5  # connections really were killed mid-run

        stored = set(f.ids(await f.all_items(store, user_a, "thr_load")))

    assert len(acknowledged) > 50
    assert set(acknowledged) <= stored, "an acknowledged write was lost"
    # the retry hides a single lost connection: nearly every write succeeds
    assert len(failed) <= len(acknowledged) // 10


async def test_unreachable_server_at_open_fails_fast_naming_the_redacted_url() -> None:
    url = f"postgresql://app:hunter2-secret@127.0.0.1:{free_port()}/app"
    started = time.monotonic()

    with pytest.raises(StoreUnavailableError) as caught:
        await open_store(url, settings=Settings(store_connect_timeout=3))

    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "postgresql://app:***@127.0.0.1" in message
    assert "hunter2-secret" not in message and "hunter2-secret" not in repr(caught.value.__cause__)


async def test_unreachable_server_can_fall_back_to_memory_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://app:hunter2-secret@127.0.0.1:{free_port()}/app"
    async with await open_store(url, settings=Settings(store_fallback="memory", store_connect_timeout=2)) as store:
        assert store.url == "memory://"
    assert "hunter2-secret" not in caplog.text


@pytest.mark.slow
async def test_server_restart_fails_clearly_then_recovers(private_postgres: PostgresServer, user_a: str) -> None:
    dbname = private_postgres.create_database()
    url = private_postgres.url(dbname, password="pw-not-shown")
    async with await open_store(url, settings=Settings(store_connect_timeout=3)) as store:
        await store.memories.remember(user_a, "fact", "k", "kept across the restart")
        await asyncio.to_thread(private_postgres.stop)

        with pytest.raises(StoreUnavailableError) as caught:
            await store.memories.get(user_a, "fact", "k")
        assert "127.0.0.1" in str(caught.value) and "pw-not-shown" not in str(caught.value)

        await asyncio.to_thread(private_postgres.start)
        memory = await store.memories.get(user_a, "fact", "k")
        assert memory is not None and memory.value == "kept across the restart"


def test_pooler_settings_from_the_url() -> None:
    supabase = "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
    assert parse_url(supabase).prepare is False  # transaction pooler port detected
    assert parse_url(supabase.replace(":6543/", ":5432/")).prepare is True  # session pooler / direct
    assert parse_url("postgresql://u:pw@pgbouncer.internal:6432/app").prepare is False  # PgBouncer's port
    explicit = parse_url("postgresql://u:pw@db.example.com:5432/app?prepare=false&pool_max=3&sslmode=require")
    assert (explicit.prepare, explicit.pool_max) == (False, 3)
    # our own parameters never reach libpq; libpq's do
    assert "prepare" not in explicit.conninfo and "pool_max" not in explicit.conninfo
    assert "sslmode=require" in explicit.conninfo
    assert "pw" not in explicit.redacted.replace("postgresql", "")


@pytest.mark.parametrize("query", ["prepare=maybe", "pool_max=0", "pool_max=lots"])
def test_bad_store_parameters_are_explained(query: str) -> None:
    with pytest.raises(ValueError, match=query.split("=")[0]) as caught:
        parse_url(f"postgresql://u:secret-pw@db.example.com/app?{query}")
    assert "secret-pw" not in str(caught.value)


@pytest.mark.parametrize(("query", "prepared"), [("", True), ("&prepare=false", False)])
async def test_statements_are_prepared_only_where_the_url_allows(
    postgres_store_url: str, user_a: str, query: str, prepared: bool
) -> None:
    """Direct connections keep statements prepared; a transaction pooler (prepare=false) gets none."""
    # pool_max=1: the check runs on the same server connection as the repeated calls
    async with await open_store(f"{postgres_store_url}?pool_max=1{query}", settings=Settings()) as store:
        assert isinstance(store, PostgresStore)
        for _ in range(8):  # psycopg prepares a statement on its 5th run
            await store.memories.remember(user_a, "fact", "k", "v")
            await store.memories.get(user_a, "fact", "k")
        rows = await store.run_as(user_a, "select count(*) from pg_prepared_statements")
        assert (rows[0][0] > 0) is prepared


async def test_prepared_statements_lost_behind_an_unrevealed_pooler_are_turned_off(
    postgres_store_url: str, user_a: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A transaction pooler on an unusual port loses prepared statements: the call still succeeds."""
    async with await open_store(f"{postgres_store_url}?pool_max=1", settings=Settings()) as store:
        assert isinstance(store, PostgresStore)
        for _ in range(8):
            await store.memories.remember(user_a, "fact", "k", "v")
        # what a pooler does, behind psycopg's back: the server connection no longer has the statements
        await store.run_as(user_a, "do $$ begin execute 'deallocate all'; end $$")
        memory = await store.memories.remember(user_a, "fact", "k", "still stored")
        assert memory.value == "still stored"
        assert "no longer prepared" in caplog.text
        for _ in range(8):
            await store.memories.get(user_a, "fact", "k")
        assert await store.run_as(user_a, "select count(*) from pg_prepared_statements") == [(0,)]


@pytest.mark.parametrize("query", ["", "&prepare=false"])
async def test_one_call_is_one_transaction_and_leaves_no_identity_behind(
    postgres_store_url: str, user_a: str, query: str
) -> None:
    """Binding, claims and statements commit or fail together; the next call on the connection is clean."""
    async with await open_store(f"{postgres_store_url}?pool_max=1{query}", settings=Settings()) as store:
        assert isinstance(store, PostgresStore) and store.rls
        insert = (
            "insert into public.memories (user_id, category, key, id, value, created_at, updated_at) "
            "values (%s, 'fact', 'half', 'mem_half', 'never committed', now(), now())"
        )
        with pytest.raises(StoreError):
            await store._db.run(user_a, (insert, [user_a]), ("select 1 / 0", None))
        assert await store.memories.get(user_a, "fact", "half") is None  # the insert was rolled back
        bound = await store.run_as(user_a, "select current_user, (select auth.uid())::text")
        assert bound == [("authenticated", user_a)]
        # same pooled connection, no user: the role and claims ended with the previous transaction
        unbound = await store._db.run(
            None, ("select current_user, coalesce(current_setting('request.jwt.claims', true), '')", None)
        )
        assert unbound[0][0] != "authenticated" and unbound[0][1] == ""


async def test_store_works_with_prepare_false_url(postgres_store_url: str, user_a: str) -> None:
    async with await open_store(f"{postgres_store_url}?prepare=false&pool_max=2", settings=Settings()) as store:
        await store.threads.save_thread(f.thread("thr_pooler"), f.ctx(user_a))
        assert (await store.threads.load_thread("thr_pooler", f.ctx(user_a))).id == "thr_pooler"


async def test_concurrent_ensure_creates_one_profile_under_contention(postgres_store_url: str) -> None:
    user_id = str(uuid.uuid4())
    async with await open_store(f"{postgres_store_url}?pool_max=8", settings=Settings()) as store:
        results = await asyncio.gather(*(store.profiles.ensure(user_id, identity="x") for _ in range(32)))
    assert sum(p.is_first_login for p in results) == 1
    async with await AsyncConnection.connect(postgres_store_url) as conn:
        cursor = await conn.execute("select visits from public.profiles where id = %s", [user_id])
        assert await cursor.fetchall() == [(32,)]


def test_private_cluster_helper_really_stops(private_postgres: PostgresServer) -> None:
    with psycopg.connect(private_postgres.admin_url) as conn:
        assert conn.execute("select current_setting('port')::int").fetchone() == (private_postgres.port,)
    private_postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(private_postgres.admin_url, connect_timeout=2)
    private_postgres.restart() if private_postgres.is_running() else private_postgres.start()
    with psycopg.connect(private_postgres.admin_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


# -- passwords with special characters ---------------------------------------------------------
NASTY_PASSWORDS = ["Ab/cD9xy", "zq7#kv2w", "wh?tev3r", "a@b/c#d?e"]


def _pieces(password: str) -> list[str]:
    """The password and its longer fragments between URL delimiters (none may be shown)."""
    fragments = password.replace("#", "/").replace("?", "/").replace("@", "/").split("/")
    return [password, *(piece for piece in fragments if len(piece) >= 3)]


@pytest.mark.parametrize("password", NASTY_PASSWORDS)
async def test_unencoded_special_characters_in_the_password_are_explained_never_shown(password: str) -> None:
    url = f"postgresql://app:{password}@127.0.0.1:{free_port()}/app"

    with pytest.raises(ValueError, match="percent-encode") as caught:
        await open_store(url, settings=Settings(store_connect_timeout=2, store_fallback="memory"))

    message = str(caught.value)
    assert "postgresql://app:***@127.0.0.1" in message
    for piece in _pieces(password):
        assert piece not in message, message


@pytest.mark.parametrize("password", NASTY_PASSWORDS)
async def test_percent_encoded_special_characters_reach_the_server_and_are_never_shown(
    password: str, postgres_server: PostgresServer, postgres_database: str
) -> None:
    encoded = quote(password, safe="")
    down = f"postgresql://app:{encoded}@127.0.0.1:{free_port()}/app"
    with pytest.raises(StoreUnavailableError) as caught:
        await open_store(down, settings=Settings(store_connect_timeout=2))
    for piece in [*_pieces(password), encoded]:
        assert piece not in str(caught.value)

    # the test server trusts loopback, so this checks that the URL still names the right server and database
    up = f"postgresql://{postgres_server.user}:{encoded}@{postgres_server.host}:{postgres_server.port}/{postgres_database}"
    async with await open_store(up, settings=Settings()) as store:
        assert isinstance(store, PostgresStore) and password not in store.url and encoded not in store.url
        await store.ping()


# -- errors the server reports ---------------------------------------------------------------
async def test_read_only_database_makes_writes_unavailable_and_says_why(empty_postgres_url: str, user_a: str) -> None:
    async with await open_store(empty_postgres_url, settings=Settings()) as store:  # migrated while writable
        await store.memories.remember(user_a, "fact", "city", "Lisbon")
    dbname = empty_postgres_url.rsplit("/", 1)[1]
    async with await AsyncConnection.connect(empty_postgres_url, autocommit=True) as admin:
        await admin.execute(f'alter database "{dbname}" set default_transaction_read_only = on')

    async with await open_store(empty_postgres_url, settings=Settings(store_migrate_on_open=False)) as store:
        memory = await store.memories.get(user_a, "fact", "city")  # reads still work
        assert memory is not None and memory.value == "Lisbon"
        with pytest.raises(StoreUnavailableError, match="read-only") as caught:
            await store.memories.remember(user_a, "fact", "city", "Porto")
        assert "ReadOnlySqlTransaction" in str(caught.value) and "127.0.0.1" in str(caught.value)
        with pytest.raises(StoreUnavailableError, match="read-only"):
            await store.threads.save_thread(f.thread("thr_ro"), f.ctx(user_a))

    # migrations cannot run on it: a configuration problem, never a silent fallback to memory
    with pytest.raises(StoreError, match="read-only") as refused:
        await open_store(empty_postgres_url, settings=Settings(store_fallback="memory"))
    assert not isinstance(refused.value, StoreUnavailableError)


async def test_other_server_errors_are_store_errors_with_the_password_scrubbed(
    postgres_server: PostgresServer, postgres_database: str, user_a: str
) -> None:
    url = f"postgresql://{postgres_server.user}:pw-not-shown@{postgres_server.host}:{postgres_server.port}/{postgres_database}"
    async with await open_store(url, settings=Settings()) as store:
        assert isinstance(store, PostgresStore)
        with pytest.raises(StoreError) as caught:
            await store.run_as(user_a, 'select * from public."pw-not-shown"')  # the server echoes the name

        assert not isinstance(caught.value, StoreUnavailableError)
        assert not isinstance(caught.value, psycopg.Error)
        message = str(caught.value)
        assert "UndefinedTable" in message and "pw-not-shown" not in message
        await store.ping()  # the store is still usable


async def test_closed_store_says_so_without_a_false_outage_warning(
    postgres_store_url: str, user_a: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(postgres_store_url, settings=Settings())
    await store.aclose()

    with caplog.at_level(logging.WARNING), pytest.raises(StoreClosedError, match="is closed; open a new one") as caught:
        await store.memories.get(user_a, "fact", "k")

    assert not isinstance(caught.value, StoreUnavailableError)
    assert "lost" not in caplog.text and "unreachable" not in caplog.text


# -- open within the deadline, leaving nothing behind
@pytest.fixture
def silent_postgres_port() -> Iterator[int]:
    """A port that accepts TCP connections but never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def _pool_tasks() -> list[str]:
    return sorted(
        task.get_name()
        for task in asyncio.all_tasks()
        if task.get_name().startswith(APPLICATION_NAME) and not task.done()
    )


@contextlib.asynccontextmanager
async def _answers_first_connection_only(port: int) -> AsyncIterator[int]:
    """A loopback TCP proxy to Postgres: the first connection is forwarded, later ones are
    accepted and never answered (a server that hangs once the pool starts connecting)."""
    held: list[asyncio.StreamWriter] = []
    forwarded = 0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal forwarded
        if forwarded:
            held.append(writer)
            return
        forwarded += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_hung_server_at_open_fails_in_time_and_leaves_no_pool_tasks(silent_postgres_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        await open_store(
            f"postgresql://app:pw-not-shown@127.0.0.1:{silent_postgres_port}/app",
            settings=Settings(store_connect_timeout=1),
        )
    assert time.monotonic() - started < 2
    assert "pw-not-shown" not in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert _pool_tasks() == []


async def test_server_hanging_when_the_pool_connects_fails_in_time_and_leaves_no_pool_tasks(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    async with await open_store(  # migrate now, so the open below only checks
        postgres_server.url(postgres_database), settings=Settings()
    ):
        pass
    async with _answers_first_connection_only(postgres_server.port) as proxy_port:
        timeout = 2.0
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            await open_store(
                f"postgresql://{postgres_server.user}@127.0.0.1:{proxy_port}/{postgres_database}",
                settings=Settings(store_connect_timeout=timeout),
            )
        assert time.monotonic() - started < timeout + 1
        assert f"127.0.0.1:{proxy_port}" in str(caught.value)
        assert _pool_tasks() == []
