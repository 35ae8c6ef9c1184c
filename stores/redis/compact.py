"""`python -m stores compact URL`: rewrite Redis's persistence files so erased data leaves the disk.

A DEL removes a key from memory at once, but Redis's files keep it: the append-only
file (AOF) holds every write command since its last rewrite, and an RDB snapshot holds
the data as it was when it was taken. Rewriting them (BGREWRITEAOF, BGSAVE) writes the
current data set only, and Redis then deletes the old files. This module asks every
primary to do that, and waits until it has finished.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from memory.settings import Settings
from stores.redis.client import describe, make_client
from stores.redis.url import parse_redis_url

_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class NodeResult:
    """What compaction did on one server: `ok` False means erased data may remain on its disk."""

    address: str
    ok: bool
    message: str


async def compact(url: str, settings: Settings, *, wait_seconds: float = 300.0) -> list[NodeResult]:
    """Rewrite the AOF and/or RDB file of every primary behind `url`; one result per server."""
    config = parse_redis_url(url, settings.store_thread_ttl_seconds)
    hosts = config.hosts
    if config.cluster:
        cluster = make_client(config, settings.store_connect_timeout)
        try:
            assert isinstance(cluster, aioredis.RedisCluster)
            await cluster.initialize()
            hosts = [(str(node.host), int(node.port)) for node in cluster.get_primaries()]
        finally:
            await cluster.aclose()
    # one plain client per primary: persistence commands act on the server they are sent to
    clients = [
        make_client(
            replace(config, cluster=False, hosts=[host], db=0 if config.cluster else config.db),
            settings.store_connect_timeout,
        )
        for host in hosts
    ]
    try:
        return list(
            await asyncio.gather(
                *(
                    _compact_node(f"{host}:{port}", client, wait_seconds)
                    for (host, port), client in zip(hosts, clients, strict=True)
                )
            )
        )
    finally:
        for client in clients:
            await client.aclose()


async def _compact_node(address: str, node: Any, wait_seconds: float) -> NodeResult:
    try:
        info = await node.info("persistence")
        aof = str(info.get("aof_enabled", "0")) == "1"
        try:
            save = (await node.config_get("save")).get("save", "")
        except ResponseError as exc:
            if aof:
                save = ""  # the AOF alone is rewritten; say that RDB could not be checked
            else:
                return NodeResult(address, False, _refused("CONFIG GET save", exc))
        rdb = bool(str(save).strip())
        if not aof and not rdb:
            return NodeResult(
                address, True, "persistence is off (no AOF, no RDB save points): no file holds erased data"
            )
        done: list[str] = []
        if aof:
            try:
                await node.execute_command("BGREWRITEAOF")
            except ResponseError as exc:
                if "already in progress" not in str(exc):
                    return NodeResult(address, False, _refused("BGREWRITEAOF", exc))
                return NodeResult(
                    address,
                    False,
                    "an AOF rewrite that started before this command is running; it may still carry erased "
                    "data: run `python -m stores compact` again once it has finished",
                )
            done.append("AOF rewritten")
        if rdb:
            await _wait_idle(node, wait_seconds)  # BGSAVE refuses to start while a rewrite is running
            try:
                await node.execute_command("BGSAVE")
            except ResponseError as exc:
                return NodeResult(address, False, _refused("BGSAVE", exc))
            done.append("RDB snapshot rewritten")
        if not await _wait_idle(node, wait_seconds):
            return NodeResult(
                address, False, f"the rewrite did not finish within {wait_seconds:g} s; check the server's log"
            )
        info = await node.info("persistence")
        failed = [
            name
            for name, field in (("AOF", "aof_last_bgrewrite_status"), ("RDB", "rdb_last_bgsave_status"))
            if str(info.get(field, "ok")) != "ok"
        ]
        if failed:
            return NodeResult(
                address, False, f"the {' and '.join(failed)} rewrite failed on the server; check its log and disk"
            )
        return NodeResult(address, True, ", ".join(done))
    except RedisError as exc:
        return NodeResult(address, False, f"cannot compact: {describe(exc)}")


async def _wait_idle(node: Any, wait_seconds: float) -> bool:
    """Wait until no AOF rewrite or RDB save is running (or scheduled); False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        info = await node.info("persistence")
        busy = any(
            str(info.get(field, "0")) == "1"
            for field in ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")
        )
        if not busy:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_SECONDS)


def _refused(command: str, exc: Exception) -> str:
    return (
        f"the server refused {command} ({describe(exc)}); it is renamed or disabled (common on managed Redis): "
        "ask the provider how persistence files are rewritten, or run the command under its new name"
    )
