"""The Redis backend beyond the shared contract: key layout, erasure, page cost, TTL, outages, cluster.

Everything runs against private `redis-server` processes on loopback (single node and a
3-master cluster from tests/fixtures/redis_servers.py); the keyspace is inspected with
plain commands (SCAN, TTL, INFO) on every node.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis.asyncio as aioredis
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    FileAttachment,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.cluster import key_slot

from memory.settings import Settings
from stores import StoreError, StoreUnavailableError, UserStore, open_store
from stores.redis.keys import encode_sort_key
from stores.redis.url import parse_redis_url
from tests.fixtures.redis_servers import RedisClusterServers, RedisServer, free_port

BASE = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
PASSWORD = "s3cret-Pa55word"


# -- builders ---------------------------------------------------------------------
def ctx(user_id: str) -> dict[str, str]:
    return {"user_id": user_id}


def user_message(item_id: str, thread_id: str, created_at: datetime = BASE, text: str = "hello") -> UserMessageItem:
    return UserMessageItem(
        id=item_id,
        thread_id=thread_id,
        created_at=created_at,
        content=[UserMessageTextContent(text=text)],
        attachments=[],
        inference_options=InferenceOptions(),
    )


def assistant_message(item_id: str, thread_id: str, created_at: datetime = BASE) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=item_id, thread_id=thread_id, created_at=created_at, content=[AssistantMessageContent(text="hi there")]
    )


def attachment(attachment_id: str, thread_id: str | None) -> FileAttachment:
    return FileAttachment(id=attachment_id, name="notes.pdf", mime_type="application/pdf", thread_id=thread_id)


async def full_workload(store: UserStore, user_id: str) -> None:
    """Touch every kind of data the store keeps, including deletes and rebinding."""
    c = ctx(user_id)
    await store.profiles.ensure(user_id, identity="caller@example.com", email="caller@example.com")
    await store.memories.remember(user_id, "preference", "favourite colour", "blue", source="voice")
    await store.memories.remember(user_id, "fact", "city", "Lisbon")
    await store.memories.remember(user_id, "fact", "pet", "a cat called Tom")
    await store.memories.forget(user_id, "fact", "pet")
    for t in range(3):
        thread_id = f"thr_{t}"
        await store.threads.save_thread(ThreadMetadata(id=thread_id, created_at=BASE + timedelta(seconds=t)), c)
        for i in range(4):
            await store.threads.add_thread_item(thread_id, user_message(f"msg_{t}_{i}", thread_id), c)
        await store.threads.add_thread_item(thread_id, assistant_message(f"ast_{t}", thread_id), c)
        await store.threads.delete_thread_item(thread_id, f"msg_{t}_0", c)
    await store.threads.save_attachment(attachment("atc_unbound", None), c)
    await store.threads.save_attachment(attachment("atc_bound", "thr_0"), c)
    await store.threads.save_attachment(attachment("atc_moved", "thr_0"), c)
    await store.threads.save_attachment(attachment("atc_moved", "thr_1"), c)  # rebound to another thread
    await store.threads.save_attachment(attachment("atc_gone", "thr_2"), c)
    await store.threads.delete_attachment("atc_gone", c)
    await store.threads.save_attachment(attachment("atc_orphan", "thr_never_created"), c)
    await store.threads.save_thread(ThreadMetadata(id="thr_deleted", created_at=BASE), c)
    await store.threads.add_thread_item("thr_deleted", user_message("msg_x", "thr_deleted"), c)
    await store.threads.save_attachment(attachment("atc_with_deleted", "thr_deleted"), c)
    await store.threads.delete_thread("thr_deleted", c)


# -- deployments: the same checks on a single node and on the cluster ---------------
@dataclass
class Deployment:
    url: str
    nodes: list[tuple[str, int]]
    cluster: bool

    def clients(self) -> list[aioredis.Redis]:
        return [aioredis.Redis(host=h, port=p, decode_responses=True) for h, p in self.nodes]

    async def keys(self, pattern: str = "*") -> dict[str, tuple[int, str]]:
        """Every matching key on every node -> (node index, type)."""
        found: dict[str, tuple[int, str]] = {}
        for index, client in enumerate(self.clients()):
            async with client:
                async for key in client.scan_iter(match=pattern, count=1000):
                    found[key] = (index, str(await client.type(key)))
        return found

    async def command_stats(self) -> dict[str, tuple[int, int]]:
        """Summed over nodes: command name -> (calls, usec)."""
        totals: dict[str, tuple[int, int]] = {}
        for client in self.clients():
            async with client:
                stats = await client.info("commandstats")
            for name, value in stats.items():
                command = name.removeprefix("cmdstat_")
                calls, usec = totals.get(command, (0, 0))
                totals[command] = (calls + int(value["calls"]), usec + int(value["usec"]))
        return totals

    async def reset_stats(self) -> None:
        for client in self.clients():
            async with client:
                await client.config_resetstat()


@pytest.fixture(params=["single", "cluster"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    if request.param == "single":
        url = request.getfixturevalue("redis_store_url")
        server: RedisServer = request.getfixturevalue("redis_server")
        return Deployment(url, [("127.0.0.1", server.port)], cluster=False)
    url = request.getfixturevalue("redis_cluster_store_url")
    cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
    return Deployment(url, [("127.0.0.1", node.port) for node in cluster.nodes], cluster=True)


@pytest.fixture
async def dstore(deployment: Deployment) -> AsyncIterator[UserStore]:
    async with await open_store(deployment.url) as opened:
        yield opened


def new_user() -> str:
    return str(uuid.uuid4())


# -- key layout ---------------------------------------------------------------------
async def test_every_key_of_a_user_carries_its_hash_tag(deployment: Deployment, dstore: UserStore) -> None:
    alice, bob = new_user(), new_user()
    await full_workload(dstore, alice)
    await full_workload(dstore, bob)

    keys = await deployment.keys()
    assert keys, "the workload wrote no keys at all"
    for key in keys:
        assert key.startswith((f"ma:{{{alice}}}:", f"ma:{{{bob}}}:")), f"key without a user hash tag: {key}"
    for user in (alice, bob):
        own = [k for k in keys if f"{{{user}}}" in k]
        assert {f"ma:{{{user}}}:threads", f"ma:{{{user}}}:mem", f"ma:{{{user}}}:profile"} <= set(own)
        assert len({key_slot(k.encode()) for k in own}) == 1, "a user's keys must share one cluster slot"
        assert len({keys[k][0] for k in own}) == 1, "a user's keys must live on one node"


async def test_deleted_thread_leaves_no_keys(deployment: Deployment, dstore: UserStore) -> None:
    user = new_user()
    c = ctx(user)
    await dstore.threads.save_thread(ThreadMetadata(id="thr_keep", created_at=BASE), c)
    before = set(await deployment.keys(f"*{{{user}}}*"))
    await dstore.threads.save_thread(ThreadMetadata(id="thr_drop", created_at=BASE), c)
    for i in range(5):
        await dstore.threads.add_thread_item("thr_drop", user_message(f"msg_{i}", "thr_drop"), c)
    await dstore.threads.save_attachment(attachment("atc_1", "thr_drop"), c)
    await dstore.threads.delete_thread("thr_drop", c)

    after = set(await deployment.keys(f"*{{{user}}}*"))
    assert not [k for k in after if "thr_drop" in k or "atc_1" in k]
    assert after == before | {f"ma:{{{user}}}:seq"}  # only the insertion counter was added
    with pytest.raises(NotFoundError):
        await dstore.threads.load_attachment("atc_1", c)


async def test_items_whose_bodies_were_evicted_are_skipped_and_pruned(
    deployment: Deployment, dstore: UserStore
) -> None:
    """Under volatile-lru an item body (or the whole :idata hash) can vanish; pages must still work."""
    user = new_user()
    c = ctx(user)
    await dstore.threads.save_thread(ThreadMetadata(id="thr_e", created_at=BASE), c)
    for i in range(6):
        await dstore.threads.add_thread_item("thr_e", user_message(f"msg_{i}", "thr_e", BASE + timedelta(seconds=i)), c)
    prefix = f"ma:{{{user}}}:t:thr_e"
    node = (await deployment.keys(f"{prefix}:idata"))[f"{prefix}:idata"][0]
    async with deployment.clients()[node] as client:
        await client.hdel(f"{prefix}:idata", "msg_1", "msg_4")

        first = await dstore.threads.load_thread_items("thr_e", None, 2, "asc", c)
        rest = await dstore.threads.load_thread_items("thr_e", first.after, 10, "asc", c)
        newest = await dstore.threads.load_thread_items("thr_e", None, 3, "desc", c)

        assert ([i.id for i in first.data], first.has_more) == (["msg_0", "msg_2"], True)
        assert ([i.id for i in rest.data], rest.has_more) == (["msg_3", "msg_5"], False)
        assert ([i.id for i in newest.data], newest.has_more) == (["msg_5", "msg_3", "msg_2"], True)
        assert await client.zcard(f"{prefix}:items") == 4  # the lost items left the index
        assert sorted(await client.hkeys(f"{prefix}:ipos")) == ["msg_0", "msg_2", "msg_3", "msg_5"]

        await client.delete(f"{prefix}:idata")  # the whole hash evicted

        empty = await dstore.threads.load_thread_items("thr_e", None, 20, "asc", c)
        assert (empty.data, empty.has_more) == ([], False)
    await dstore.threads.add_thread_item("thr_e", user_message("msg_new", "thr_e", BASE), c)
    again = await dstore.threads.load_thread_items("thr_e", None, 20, "asc", c)
    assert [i.id for i in again.data] == ["msg_new"]


# -- forget_user ----------------------------------------------------------------------
async def test_forget_user_removes_every_key_and_touches_no_other_user(
    deployment: Deployment, dstore: UserStore
) -> None:
    alice, bob = new_user(), new_user()
    await full_workload(dstore, alice)
    await full_workload(dstore, bob)
    bob_keys_before = await deployment.keys(f"*{{{bob}}}*")
    bob_export_before = await dstore.export_user(bob)
    assert await deployment.keys(f"*{{{alice}}}*")

    await dstore.forget_user(alice)

    assert await deployment.keys(f"*{{{alice}}}*") == {}
    assert await deployment.keys(f"*{alice}*") == {}
    assert await deployment.keys(f"*{{{bob}}}*") == bob_keys_before
    assert await dstore.export_user(bob) == bob_export_before
    assert (await dstore.export_user(alice))["threads"] == []


async def test_forget_user_on_a_user_with_many_threads(deployment: Deployment, dstore: UserStore) -> None:
    user = new_user()
    c = ctx(user)
    for t in range(120):
        await dstore.threads.save_thread(ThreadMetadata(id=f"thr_{t}", created_at=BASE), c)
        await dstore.threads.add_thread_item(f"thr_{t}", user_message(f"msg_{t}", f"thr_{t}"), c)
    assert len(await deployment.keys(f"*{{{user}}}*")) > 360
    await dstore.forget_user(user)
    assert await deployment.keys(f"*{{{user}}}*") == {}


# -- cost of a page ---------------------------------------------------------------------
async def _fill_thread(store: UserStore, user: str, thread_id: str, count: int, body: str) -> None:
    c = ctx(user)
    await store.threads.save_thread(ThreadMetadata(id=thread_id, created_at=BASE), c)
    for start in range(0, count, 200):
        await asyncio.gather(
            *(
                store.threads.add_thread_item(
                    thread_id, user_message(f"msg_{i:06d}", thread_id, BASE + timedelta(seconds=i), body), c
                )
                for i in range(start, min(count, start + 200))
            )
        )


# connection set-up and the measurement itself, not part of serving a page
_HOUSEKEEPING = {
    "config|resetstat",
    "info",
    "hello",
    "client|setinfo",
    "client|setname",
    "select",
    "ping",
    "script|load",
}


async def _page_cost(
    deployment: Deployment, store: UserStore, user: str, thread_id: str, cursor: str, rounds: int
) -> tuple[dict[str, int], int]:
    """Commands run per page (Lua-internal ones included) and total server usec for `rounds` pages."""
    await store.threads.load_thread_items(thread_id, cursor, 20, "asc", ctx(user))  # warm: scripts, connections
    await deployment.reset_stats()
    for _ in range(rounds):
        for order in ("asc", "desc"):
            page = await store.threads.load_thread_items(thread_id, cursor, 20, order, ctx(user))
            assert len(page.data) == 20 and page.has_more
    stats = {name: value for name, value in (await deployment.command_stats()).items() if name not in _HOUSEKEEPING}
    calls = {name: count for name, (count, _) in stats.items()}
    return calls, sum(usec for _, usec in stats.values())


async def test_item_page_cost_does_not_grow_with_thread_size(deployment: Deployment, dstore: UserStore) -> None:
    user = new_user()
    body = "x" * 2000
    await _fill_thread(dstore, user, "thr_small", 60, body)
    await _fill_thread(dstore, user, "thr_big", 4000, body)

    rounds = 30
    small_calls, small_usec = await _page_cost(deployment, dstore, user, "thr_small", "msg_000030", rounds)
    big_calls, big_usec = await _page_cost(deployment, dstore, user, "thr_big", "msg_002000", rounds)

    # the same commands, the same number of times: one ranged read, one multi-get per page
    assert big_calls == small_calls
    assert big_calls["zrange"] == 2 * rounds
    assert big_calls["hmget"] == 2 * rounds
    assert "hgetall" not in big_calls and "hvals" not in big_calls
    # reading 4000 x 2 kB items would cost ~100x more server time than 20 of them
    assert big_usec < 5 * small_usec + 2000, (small_usec, big_usec)


async def test_each_write_is_one_script_call(deployment: Deployment, dstore: UserStore) -> None:
    user = new_user()
    c = ctx(user)
    await dstore.threads.save_thread(ThreadMetadata(id="thr_w", created_at=BASE), c)
    await dstore.threads.add_thread_item("thr_w", user_message("msg_0", "thr_w"), c)  # scripts now loaded
    writes = [
        dstore.threads.save_thread(ThreadMetadata(id="thr_w", created_at=BASE, title="renamed"), c),
        dstore.threads.add_thread_item("thr_w", user_message("msg_1", "thr_w"), c),
        dstore.threads.save_item("thr_w", user_message("msg_1", "thr_w", text="edited"), c),
        dstore.threads.delete_thread_item("thr_w", "msg_1", c),
        dstore.threads.save_attachment(attachment("atc_w", "thr_w"), c),
        dstore.memories.remember(user, "fact", "city", "Porto"),
        dstore.profiles.ensure(user),
        dstore.threads.delete_thread("thr_w", c),
    ]
    for write in writes:
        await deployment.reset_stats()
        await write
        stats = await deployment.command_stats()
        assert stats.get("evalsha", (0, 0))[0] == 1, stats
        assert "multi" not in stats and "script|load" not in stats


# -- ordering encoding ------------------------------------------------------------------
def test_sort_key_encoding_keeps_numeric_order() -> None:
    values = [-(2**62), -(10**17), -1, 0, 1, 2**53 + 1, 2**53 + 2, 10**17, 2**62]
    encoded = [encode_sort_key(v) for v in values]
    assert encoded == sorted(encoded)
    assert all(len(e) == 16 for e in encoded)


async def test_order_is_exact_for_old_dates_and_equal_timestamps(dstore: UserStore) -> None:
    user = new_user()
    c = ctx(user)
    await dstore.threads.save_thread(ThreadMetadata(id="thr_o", created_at=BASE), c)
    moments = {
        "msg_1969": datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),  # negative sort key
        "msg_1900": datetime(1900, 1, 1, tzinfo=UTC),
        "msg_same_b": datetime(2300, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        "msg_same_a": datetime(2300, 1, 1, 0, 0, 0, 1, tzinfo=UTC),  # equal time, inserted later
        "msg_2300_next": datetime(2300, 1, 1, 0, 0, 0, 2, tzinfo=UTC),  # 1 µs later, beyond float precision
    }
    for item_id, moment in moments.items():
        await dstore.threads.add_thread_item("thr_o", user_message(item_id, "thr_o", moment), c)
    await dstore.threads.add_thread_item("thr_o", user_message("msg_same_b", "thr_o", BASE, text="upsert"), c)
    page = await dstore.threads.load_thread_items("thr_o", None, 10, "asc", c)
    assert [i.id for i in page.data] == ["msg_1900", "msg_1969", "msg_same_b", "msg_same_a", "msg_2300_next"]


# -- TTL ----------------------------------------------------------------------------------
async def _ttls(deployment: Deployment, pattern: str) -> dict[str, int]:
    result: dict[str, int] = {}
    for client in deployment.clients():
        async with client:
            async for key in client.scan_iter(match=pattern):
                result[key] = await client.pttl(key)
    return result


async def test_thread_ttl_from_url_expires_thread_data_only(deployment: Deployment) -> None:
    user = new_user()
    c = ctx(user)
    async with await open_store(f"{deployment.url}?thread_ttl=2") as store:
        await store.profiles.ensure(user)
        await store.memories.remember(user, "fact", "city", "Lisbon")
        await store.threads.save_thread(ThreadMetadata(id="thr_t", created_at=BASE), c)
        await store.threads.add_thread_item("thr_t", user_message("msg_1", "thr_t"), c)
        await store.threads.save_attachment(attachment("atc_t", "thr_t"), c)

        ttls = await _ttls(deployment, f"*{{{user}}}*")
        for key, pttl in ttls.items():
            if key.endswith((":mem", ":profile", ":mterms", ":mix", ":memlog")) or ":mt:" in key:
                assert pttl == -1, f"{key} must never expire"  # memories, their search index, their audit trail
            else:
                assert 0 < pttl <= 2000, f"{key} should expire within the TTL, has {pttl} ms"

        await asyncio.sleep(1.2)
        await store.threads.add_thread_item("thr_t", user_message("msg_2", "thr_t"), c)  # re-arms the TTL
        await asyncio.sleep(1.2)  # 2.4 s after creation, 1.2 s after the last write
        assert (await store.threads.load_thread("thr_t", c)).id == "thr_t"
        assert (await store.threads.load_attachment("atc_t", c)).id == "atc_t"
        assert [i.id for i in (await store.threads.load_thread_items("thr_t", None, 10, "asc", c)).data] == [
            "msg_1",
            "msg_2",
        ]

        await asyncio.sleep(2.2)
        with pytest.raises(NotFoundError):
            await store.threads.load_thread("thr_t", c)
        with pytest.raises(NotFoundError):
            await store.threads.load_attachment("atc_t", c)
        assert (await store.threads.load_threads(10, None, "desc", c)).data == []
        assert (await store.memories.get(user, "fact", "city")) is not None
        assert (await store.profiles.get(user)) is not None

        # a thread re-created with the same id after expiry shows up once
        await store.threads.save_thread(ThreadMetadata(id="thr_t", created_at=BASE), c)
        assert [t.id for t in (await store.threads.load_threads(10, None, "asc", c)).data] == ["thr_t"]
        assert (await store.threads.load_thread_items("thr_t", None, 10, "asc", c)).data == []
        await store.forget_user(user)
    assert await deployment.keys(f"*{{{user}}}*") == {}


async def test_expired_threads_are_pruned_from_pages(redis_store_url: str) -> None:
    user = new_user()
    c = ctx(user)
    async with await open_store(f"{redis_store_url}?thread_ttl=2") as store:
        for t in range(5):
            await store.threads.save_thread(ThreadMetadata(id=f"thr_old_{t}", created_at=BASE), c)
        await asyncio.sleep(1.3)
        # keeps the thread index alive after the old threads expire, so their entries linger in it
        await store.threads.save_thread(ThreadMetadata(id="thr_keeper", created_at=BASE - timedelta(days=1)), c)
        await asyncio.sleep(1.0)
        # an expired thread comes back under the same id before any page has seen it expire
        await store.threads.save_thread(ThreadMetadata(id="thr_old_3", created_at=BASE), c)
        for t in range(3):
            await store.threads.save_thread(ThreadMetadata(id=f"thr_new_{t}", created_at=BASE), c)
        page = await store.threads.load_threads(3, None, "asc", c)
        assert [t.id for t in page.data] == ["thr_keeper", "thr_old_3", "thr_new_0"] and page.has_more
        page = await store.threads.load_threads(3, page.after, "asc", c)
        assert [t.id for t in page.data] == ["thr_new_1", "thr_new_2"] and not page.has_more
        page = await store.threads.load_threads(10, None, "desc", c)
        assert [t.id for t in page.data] == ["thr_new_2", "thr_new_1", "thr_new_0", "thr_old_3", "thr_keeper"]
    client = aioredis.Redis.from_url(redis_store_url, decode_responses=True)
    async with client:  # the expired threads' index entries were pruned
        assert await client.zcard(f"ma:{{{user}}}:threads") == 5


async def test_thread_ttl_from_settings_and_url_override(redis_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE_THREAD_TTL_SECONDS", "300")
    user = new_user()
    async with await open_store(redis_store_url, settings=Settings()) as store:
        await store.threads.save_thread(ThreadMetadata(id="thr_s", created_at=BASE), ctx(user))
    async with await open_store(f"{redis_store_url}?thread_ttl=0", settings=Settings()) as store:
        await store.threads.save_thread(ThreadMetadata(id="thr_u", created_at=BASE), ctx(user))
    client = aioredis.Redis.from_url(redis_store_url, decode_responses=True)
    async with client:
        assert 290_000 < await client.pttl(f"ma:{{{user}}}:t:thr_s") <= 300_000
        assert await client.pttl(f"ma:{{{user}}}:t:thr_u") == -1


# -- unreachable, wrong password, restart ---------------------------------------------------
@pytest.mark.parametrize("form", ["redis://:{pw}@127.0.0.1:{port}/0", "redis+cluster://:{pw}@127.0.0.1:{port}"])
async def test_unreachable_server_fails_fast_without_leaking_password(form: str) -> None:
    url = form.format(pw=PASSWORD, port=free_port())
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        await open_store(url, settings=Settings(store_connect_timeout=3))
    assert time.monotonic() - started < 4
    message = str(raised.value)
    assert PASSWORD not in message and PASSWORD not in repr(raised.value)
    assert "127.0.0.1" in message and ":***@" in message
    assert "check that the server is running" in message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections but never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


async def test_hung_server_fails_within_the_connect_timeout(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        await open_store(f"redis://:{PASSWORD}@127.0.0.1:{silent_port}/0", settings=Settings(store_connect_timeout=1))
    assert time.monotonic() - started < 2.5
    assert PASSWORD not in str(raised.value)
    assert "no answer within" in str(raised.value)


async def test_wrong_password_is_reported_without_the_password() -> None:
    server = RedisServer(password="the-right-one")
    await server.astart()
    try:
        url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        with pytest.raises(StoreUnavailableError) as raised:
            await open_store(url, settings=Settings(store_connect_timeout=3))
        assert PASSWORD not in str(raised.value) and "the-right-one" not in str(raised.value)
        async with await open_store(server.url.replace("/0", "/3")) as store:
            user = new_user()
            await store.memories.remember(user, "fact", "city", "Lisbon")
            assert (await store.memories.get(user, "fact", "city")) is not None
    finally:
        await server.astop()
        server.close()


async def test_outage_during_operation_is_unavailable_not_missing(fresh_redis_server: RedisServer) -> None:
    user = new_user()
    c = ctx(user)
    async with await open_store(fresh_redis_server.url) as store:
        await store.threads.save_thread(ThreadMetadata(id="thr_r", created_at=BASE), c)
        await fresh_redis_server.astop()
        with pytest.raises(StoreUnavailableError, match="is unavailable"):
            await store.threads.load_thread("thr_r", c)
        with pytest.raises(StoreUnavailableError):
            await store.ping()

        await fresh_redis_server.astart()  # empty again: nothing persisted, scripts gone (NOSCRIPT)
        await store.ping()
        with pytest.raises(NotFoundError):
            await store.threads.load_thread("thr_r", c)
        await store.threads.save_thread(ThreadMetadata(id="thr_r", created_at=BASE), c)
        await store.threads.add_thread_item("thr_r", user_message("msg_1", "thr_r"), c)
        assert len((await store.threads.load_thread_items("thr_r", None, 5, "asc", c)).data) == 1


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA), made in-process with `cryptography`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(password=PASSWORD, tls=_self_signed_certificate(tmp_path))
    try:
        server.start()
        yield server
    finally:
        server.close()


async def test_rediss_url_talks_tls_and_checks_the_certificate(tls_redis_server: RedisServer) -> None:
    user = new_user()
    async with await open_store(tls_redis_server.url) as store:  # rediss://…?ssl_ca_certs=<our CA>
        await store.threads.save_thread(ThreadMetadata(id="thr_tls", created_at=BASE), ctx(user))
        assert (await store.threads.load_thread("thr_tls", ctx(user))).id == "thr_tls"
    untrusted = f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis_server.port}/0"
    with pytest.raises(StoreUnavailableError) as raised:  # the system CAs don't know our certificate
        await open_store(untrusted, settings=Settings(store_connect_timeout=3))
    assert PASSWORD not in str(raised.value)
    plain = f"redis://:{PASSWORD}@127.0.0.1:{tls_redis_server.port}/0"
    with pytest.raises(StoreUnavailableError):
        await open_store(plain, settings=Settings(store_connect_timeout=2))


# -- URL forms and server kinds ----------------------------------------------------------
def test_url_forms() -> None:
    single = parse_redis_url(f"rediss://app:{PASSWORD}@cache.internal:6380/2?thread_ttl=60&ssl_cert_reqs=none")
    assert (single.tls, single.cluster, single.hosts, single.db) == (True, False, [("cache.internal", 6380)], 2)
    assert (single.username, single.password, single.thread_ttl, single.ssl_cert_reqs) == ("app", PASSWORD, 60, "none")
    assert PASSWORD not in single.redacted and PASSWORD not in repr(single)

    cluster = parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002", default_thread_ttl=30)
    assert cluster.cluster and cluster.hosts == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    assert cluster.thread_ttl == 30 and parse_redis_url("redis://h?thread_ttl=0", 30).thread_ttl is None
    assert parse_redis_url("redis://h").hosts == [("h", 6379)]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://:{pw}@h1:1,h2:2/0", "only allowed for Redis Cluster"),
        ("redis+cluster://:{pw}@h1:7000/3", "only has database 0"),
        ("redis://:{pw}@h:notaport/0", "port"),
        ("redis://:{pw}@h:6379/zero", "must be a number"),
        ("redis://:{pw}@h:6379/0?thread_ttl=soon", "thread_ttl"),
        ("redis://:{pw}@h:6379/0?colour=blue", "unknown option 'colour'"),
        ("redis://:{pw}@h:6379/0?max_connections=0", "max_connections"),
    ],
)
async def test_bad_urls_are_explained_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        await open_store(url.format(pw=PASSWORD))
    assert PASSWORD not in str(raised.value)


NASTY_PASSWORDS = ["Ab/cD9xy", "zq7#kv2w", "wh?tev3r", "a@b/c#d?e"]


@pytest.mark.parametrize("password", NASTY_PASSWORDS)
@pytest.mark.parametrize("form", ["redis://:{pw}@127.0.0.1:{port}/0", "redis+cluster://app:{pw}@127.0.0.1:{port}"])
async def test_unencoded_special_characters_in_the_password_are_explained_never_shown(form: str, password: str) -> None:
    url = form.format(pw=password, port=free_port())

    with pytest.raises(ValueError, match="percent-encode") as raised:
        await open_store(url, settings=Settings(store_connect_timeout=2, store_fallback="memory"))

    message = str(raised.value)
    assert ":***@127.0.0.1" in message
    for piece in [password, *password.replace("#", "/").replace("?", "/").replace("@", "/").split("/")]:
        if len(piece) >= 3:
            assert piece not in message, message


async def test_percent_encoded_special_characters_in_the_password_work() -> None:
    password = "a@b/c#d?e:f%g"
    server = RedisServer(password=password)
    await server.astart()
    try:
        url = f"redis://:{quote(password, safe='')}@127.0.0.1:{server.port}/2"
        async with await open_store(url, settings=Settings(store_connect_timeout=3)) as store:
            user = new_user()
            await store.memories.remember(user, "fact", "city", "Lisbon")
            assert (await store.memories.get(user, "fact", "city")) is not None
            assert "c#d" not in store.url and ":***@127.0.0.1" in store.url
    finally:
        await server.astop()
        server.close()


async def test_url_of_the_wrong_server_kind_is_explained(
    redis_server: RedisServer, redis_cluster: RedisClusterServers
) -> None:
    with pytest.raises(ValueError, match="redis\\+cluster://"):
        await open_store(f"redis://127.0.0.1:{redis_cluster.nodes[0].port}/0")
    with pytest.raises(ValueError, match="not a cluster node"):
        await open_store(f"redis+cluster://127.0.0.1:{redis_server.port}")


# -- cluster ---------------------------------------------------------------------------------
async def test_cluster_spreads_users_over_all_masters(
    redis_cluster: RedisClusterServers, redis_cluster_store_url: str
) -> None:
    deployment = Deployment(redis_cluster_store_url, [("127.0.0.1", n.port) for n in redis_cluster.nodes], cluster=True)
    users = [new_user() for _ in range(40)]
    async with await open_store(redis_cluster_store_url) as store:
        await asyncio.gather(*(full_workload(store, user) for user in users))
        users_per_node: dict[int, set[str]] = {}
        for key, (node, _) in (await deployment.keys()).items():
            users_per_node.setdefault(node, set()).add(key.split("{", 1)[1].split("}", 1)[0])
        assert sorted(users_per_node) == [0, 1, 2], "every master should hold some users"
        assert set().union(*users_per_node.values()) == set(users)
        # each user lives on exactly one master
        assert sum(len(u) for u in users_per_node.values()) == len(users)
        for user in users[:5]:
            assert len((await store.export_user(user))["threads"]) == 3


async def test_one_store_closes_its_pool_once(redis_store_url: str) -> None:
    store = await open_store(redis_store_url)
    await store.ping()
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError, match="is closed"):  # fails loudly instead of reconnecting silently
        await store.ping()
