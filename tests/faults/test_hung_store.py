"""A store server that hangs (accepts, then never answers) costs each call STORE_OP_TIMEOUT, not forever.

Two hangs: a private Redis stopped with SIGSTOP, and a private Postgres database
behind a TCP proxy that stops forwarding. For each: the store raises
StoreTimeoutError naming the redacted URL and the timeout within the deadline and
works again once the server thaws; the API answers 503 within the deadline; a voice
call keeps replying, and its writes are stored after the thaw, none lost. On SQLite
the "hang" is another process holding the write lock longer than the deadline.
Deadlines are generous (the machine is shared), but bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from memory import identity_to_uuid
from memory.settings import Settings
from stores import StoreTimeoutError, UserStore, open_store
from tests.agent.helpers import assistant_replies, call, fake_call, message_text
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fixtures.freezing_proxy import FreezingProxy
from tests.fixtures.postgres_servers import PostgresServer
from tests.fixtures.redis_servers import RedisServer
from tests.http.conftest import Tokens, serve

PASSWORD = "hung-store-pw-5150"
OP_TIMEOUT = 1.0
WITHIN = OP_TIMEOUT + 4.0  # the deadline plus room for a loaded machine; hung calls used to take 30-90 s


@dataclass
class Hang:
    url: str
    redacted: str
    freeze: Callable[[], None]
    thaw: Callable[[], None]


@pytest.fixture(params=["redis", "postgres"])
def hang(request: pytest.FixtureRequest) -> Iterator[Hang]:
    """A store URL whose server can be made to hang (and thaw) at will."""
    if request.param == "redis":
        with RedisServer(password=PASSWORD) as node:
            yield Hang(node.url, f"redis://:***@127.0.0.1:{node.port}/0", node.pause, node.resume)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database = server.create_database("hung_store")
    try:
        with FreezingProxy(server.host, server.port) as proxy:
            address = f"127.0.0.1:{proxy.port}/{database}"
            url = f"postgresql://{server.user}:{PASSWORD}@{address}?pool_max=3"
            yield Hang(url, f"postgresql://{server.user}:***@{address}", proxy.freeze, proxy.thaw)
    finally:
        server.drop_database(database)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"store_op_timeout": OP_TIMEOUT, "store_connect_timeout": 3.0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg,arg-type]


@pytest.mark.slow
async def test_store_calls_fail_within_the_deadline_and_work_after_the_thaw(hang: Hang) -> None:
    user = str(uuid.uuid4())
    async with await open_store(hang.url, settings=settings()) as store:
        await store.memories.remember(user, "personal", "name", "Ada")
        hang.freeze()
        try:
            started = time.monotonic()
            # more calls than the Postgres pool has connections: the waiting ones are bounded too
            results = await asyncio.gather(
                *(store.memories.get(user, "personal", "name") for _ in range(5)),
                store.memories.remember(user, "personal", "city", "Leeds"),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - started
        finally:
            hang.thaw()
        assert all(isinstance(r, StoreTimeoutError) for r in results), results
        assert elapsed < WITHIN
        message = str(results[0])
        assert hang.redacted in message and f"STORE_OP_TIMEOUT={OP_TIMEOUT:g}s" in message
        assert PASSWORD not in message

        # the hung connections were dropped: every call after the thaw gets its own, correct answer
        keys = [f"key {n}" for n in range(8)]
        await asyncio.wait_for(
            asyncio.gather(*(store.memories.remember(user, "fact", k, f"value {k}") for k in keys)), WITHIN
        )
        found = await asyncio.gather(*(store.memories.get(user, "fact", k) for k in keys))
        assert [m.value if m else None for m in found] == [f"value {k}" for k in keys]
        name = await store.memories.get(user, "personal", "name")
        assert name is not None and name.value == "Ada"


@pytest.mark.slow
async def test_api_answers_503_within_the_deadline(
    hang: Hang, settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    user = str(uuid.uuid4())
    token = tokens.mint(user)
    app_settings = settings_factory(store_url=hang.url, store_op_timeout=OP_TIMEOUT, store_connect_timeout=3.0)
    async with serve(app_settings) as api:
        assert (await api.client.get("/me/export", headers=api.auth(token))).status_code == 200
        hang.freeze()
        try:
            started = time.monotonic()
            response = await api.client.get("/me/export", headers=api.auth(token))
            elapsed = time.monotonic() - started
        finally:
            hang.thaw()
        assert response.status_code == 503, response.text
        assert elapsed < WITHIN
        assert "did not answer" in response.json()["detail"] and response.headers["retry-after"]
        assert PASSWORD not in response.text
        again = await api.client.get("/me/export", headers=api.auth(token))
        assert again.status_code == 200 and again.json()["user_id"] == user


@pytest.mark.slow
async def test_voice_call_keeps_replying_and_stores_everything_after_the_thaw(hang: Hang) -> None:
    identity = f"hung.{uuid.uuid4().hex[:8]}@example.com"
    user = identity_to_uuid(identity)
    scripted = ScriptedLLM(
        [
            ["Hello! How can I help?"],
            [call("remember", category="personal", key="name", value="Ada")],
            ["Nice to meet you, Ada."],
            ["Leeds is lovely."],
        ]
    )
    async with await open_store(hang.url, settings=settings()) as store:
        async with fake_call(store, scripted, identity, job_id="job-hung") as session:
            hang.freeze()
            try:
                started = time.monotonic()
                await asyncio.wait_for(session.run(user_input="My name is Ada"), WITHIN * 2)
                await asyncio.wait_for(session.run(user_input="I live in Leeds"), WITHIN * 2)
                replied_in = time.monotonic() - started
                await asyncio.sleep(OP_TIMEOUT * 1.5)  # writes are attempted (and time out) while it hangs
            finally:
                hang.thaw()
            assert assistant_replies(session)[-2:] == ["Nice to meet you, Ada.", "Leeds is lovely."]
            assert replied_in < WITHIN * 2  # the replies did not wait on the hung store
        # hanging up flushed what was queued once the server answered again
        memory = await store.memories.get(user, "personal", "name")
        assert memory is not None and memory.value == "Ada"
        await _expect_transcript(
            store,
            user,
            [
                "Hello! How can I help?",
                "My name is Ada",
                "Nice to meet you, Ada.",
                "I live in Leeds",
                "Leeds is lovely.",
            ],
        )


async def _expect_transcript(store: UserStore, user: str, texts: list[str]) -> None:
    context = {"user_id": user}
    threads = (await store.threads.load_threads(10, None, "asc", context)).data
    assert len(threads) == 1
    items = (await store.threads.load_thread_items(threads[0].id, None, 50, "asc", context)).data
    assert [message_text(item) for item in items] == texts


async def test_sqlite_write_blocked_by_another_process_fails_within_the_deadline(tmp_path: Path) -> None:
    """Another process holding the write lock (busy_timeout a minute): the write gives up after STORE_OP_TIMEOUT."""
    path = tmp_path / "store.db"
    user = str(uuid.uuid4())
    async with await open_store(f"sqlite:///{path}?busy_timeout_ms=60000", settings=settings()) as store:
        await store.memories.remember(user, "personal", "name", "Ada")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock, like a long job in another process
        try:
            started = time.monotonic()
            with pytest.raises(StoreTimeoutError) as caught:
                await store.memories.remember(user, "personal", "city", "Leeds")
            elapsed = time.monotonic() - started
            name = await store.memories.get(user, "personal", "name")  # reads are not blocked by a writer
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert elapsed < WITHIN
        assert str(path) in str(caught.value) and f"STORE_OP_TIMEOUT={OP_TIMEOUT:g}s" in str(caught.value)
        assert name is not None and name.value == "Ada"
        await asyncio.wait_for(store.memories.remember(user, "personal", "city", "Leeds"), WITHIN)
        city = await store.memories.get(user, "personal", "city")
        assert city is not None and city.value == "Leeds"
