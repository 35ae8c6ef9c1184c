"""`python -m stores compact URL`: Redis persistence files stop holding an erased user's data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stores import open_store
from stores.__main__ import main
from tests.fixtures.redis_servers import DurableRedisServer, RedisClusterServers, RedisServer
from tests.integration.test_physical_erasure import marker, seed


def disk_hits(directory: Path, text: str) -> int:
    """Occurrences of `text` in the server's AOF and RDB files."""
    needle = text.encode()
    files = [p for p in directory.rglob("*") if p.is_file() and p.name != "redis.log" and "nodes-" not in p.name]
    assert files, f"no persistence files in {directory}"
    return sum(p.read_bytes().count(needle) for p in files)


async def test_compact_rewrites_the_aof_and_rdb_without_the_erased_user(
    durable_redis: DurableRedisServer, user_a: str, user_b: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with durable_redis.client() as client:
        client.config_set("save", "3600 1")  # RDB snapshots too
        client.config_set("rdbcompression", "no")  # so a byte scan of dump.rdb sees plain text
    async with await open_store(durable_redis.url) as store:
        await seed(store, user_a, "alice")
        await seed(store, user_b, "bob")
        await store.forget_user(user_a)
    assert disk_hits(durable_redis.dir, marker("alice")) > 0  # the AOF still replays alice's writes

    assert await asyncio.to_thread(main, ["compact", durable_redis.url]) == 0

    out = capsys.readouterr().out
    assert "AOF rewritten" in out and "RDB snapshot rewritten" in out
    assert disk_hits(durable_redis.dir, marker("alice")) == 0
    assert disk_hits(durable_redis.dir, marker("bob")) > 0


async def test_compact_on_a_server_without_persistence_says_there_is_nothing_to_do(
    redis_server: RedisServer, redis_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["compact", redis_store_url]) == 0
    assert "persistence is off" in capsys.readouterr().out


async def test_compact_explains_a_renamed_rewrite_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class Renamed(DurableRedisServer):
        def _args(self) -> list[str]:
            return [*super()._args(), "--rename-command", "BGREWRITEAOF", "secret-rewrite"]

    server = Renamed(workdir=tmp_path / "redis")
    server.start()
    try:
        assert await asyncio.to_thread(main, ["compact", server.url]) == 1
    finally:
        server.close()
    err = capsys.readouterr().err
    assert "refused BGREWRITEAOF" in err and "renamed or disabled" in err


async def test_compact_covers_every_cluster_primary(
    redis_cluster: RedisClusterServers, redis_cluster_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["compact", redis_cluster_store_url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sorted(line.split(": ")[0] for line in lines) == sorted(node.address for node in redis_cluster.nodes)


def test_compact_rejects_a_non_redis_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compact", "sqlite:///./x.db"]) == 2
    assert "not a Redis URL" in capsys.readouterr().err
