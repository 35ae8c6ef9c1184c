"""One redis-py asyncio client per store (single node or cluster), its scripts, and error mapping.

Every call goes through `RedisConnection`, which turns driver errors into store
errors naming the redacted URL: an unreachable server becomes StoreUnavailableError
(never a "not found"), so callers can tell an outage from missing data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ClusterDownError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stores.errors import StoreError, StoreUnavailableError, closed_error, timeout_error
from stores.redis import scripts
from stores.redis.keys import NAMESPACE
from stores.redis.url import RedisUrl

T = TypeVar("T")
_USER_ROOT_KEYS = {"profile", "mem", "memlog", "threads", "atts"}  # every user with data has one of these
Client = aioredis.Redis | RedisCluster
_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
    OSError,
)


DEFAULT_OP_TIMEOUT = 5.0
FEED_CONNECTIONS = 1  # the change feed's one pub/sub connection per store (its own client)


def make_client(config: RedisUrl, connect_timeout: float, op_timeout: float = DEFAULT_OP_TIMEOUT) -> Client:
    """A client with bounded connect and read timeouts and a short retry, so outages surface in seconds.

    A read that times out (or is cancelled by the operation deadline) makes redis-py
    disconnect that connection, so a late reply can never be read by another command.
    """
    common: dict[str, Any] = {
        "username": config.username,
        "password": config.password,
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": op_timeout,
        "decode_responses": True,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
        "client_name": "memory-agent",
        "max_connections": config.max_connections,
    }
    if config.tls:
        common.update(ssl=True, ssl_cert_reqs=config.ssl_cert_reqs, ssl_ca_certs=config.ssl_ca_certs)
    if config.cluster:
        nodes = [ClusterNode(host, port) for host, port in config.hosts]
        return RedisCluster(startup_nodes=nodes, **common)
    host, port = config.hosts[0]
    return aioredis.Redis(host=host, port=port, db=config.db, **common)


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RedisConnection:
    """The store's client, its registered Lua scripts and the error mapping for every call."""

    def __init__(self, client: Client, config: RedisUrl, op_timeout: float = DEFAULT_OP_TIMEOUT) -> None:
        self.client = client
        self.config = config
        self.op_timeout = op_timeout
        self.cluster = isinstance(client, RedisCluster)
        self.thread_ttl = config.thread_ttl or 0
        # redis-py's pools raise when exhausted; callers past the pool size wait here instead.
        # One connection of max_connections is left to the change feed's pub/sub client
        # (stores/redis/changes.py), so commands and the feed together stay within it.
        self._slots = asyncio.Semaphore(max(1, config.max_connections - FEED_CONNECTIONS))
        self.closed = False
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(source) for name, source in scripts.ALL.items()
        }

    def error(self, exc: BaseException) -> StoreError:
        """The store error for a driver error (the password never appears: messages use the redacted URL)."""
        reason = describe(exc)
        if self.config.password:
            reason = reason.replace(self.config.password, "***")
        if isinstance(exc, RedisTimeoutError):
            return timeout_error(f"Redis store at {self.config.redacted}", self.op_timeout)
        if isinstance(exc, _UNAVAILABLE):
            return StoreUnavailableError(
                f"Redis at {self.config.redacted} is unavailable ({reason}); check that the server is running "
                "and reachable, and that the URL's host, port and password are right"
            )
        return StoreError(f"Redis at {self.config.redacted} failed ({reason})")

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await one driver call within the pool limit and STORE_OP_TIMEOUT, mapping driver errors to store errors.

        The deadline covers the wait for a pool slot, the call and redis-py's retries. A
        caller that gives up early (its own timeout, a cancelled task) does not cut a
        started command short: redis-py would drop its connection, and a burst of such
        cancellations would keep the pool reconnecting. The command finishes (within the
        deadline) in its own task instead; one still waiting for a slot is cancelled.
        """
        if self.closed:
            if isinstance(awaitable, Coroutine):
                awaitable.close()
            raise closed_error(f"Redis store at {self.config.redacted}")
        started: list[bool] = []
        call = asyncio.ensure_future(self._run(awaitable, started))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            if not started:
                call.cancel()
            call.add_done_callback(_consume)
            raise

    async def _run(self, awaitable: Awaitable[T], started: list[bool]) -> T:
        try:
            async with asyncio.timeout(self.op_timeout):
                await self._slots.acquire()
                try:
                    started.append(True)
                    return await awaitable
                finally:
                    self._slots.release()
        except TimeoutError:
            raise timeout_error(f"Redis store at {self.config.redacted}", self.op_timeout) from None
        except (RedisError, *_UNAVAILABLE) as exc:
            raise self.error(exc) from exc
        finally:
            if not started and isinstance(awaitable, Coroutine):
                awaitable.close()  # timed out or cancelled while waiting: the call never started

    async def script(self, name: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run one registered script (EVALSHA; redis-py reloads it after NOSCRIPT, e.g. after a restart)."""
        return await self.run(self._scripts[name](keys=list(keys), args=list(args)))

    # single-key reads (decode_responses=True: every reply is str)
    async def hget(self, key: str, field: str) -> str | None:
        return cast("str | None", await self.run(self.client.hget(key, field)))

    async def hgetall(self, key: str) -> dict[str, str]:
        return cast("dict[str, str]", await self.run(self.client.hgetall(key)))

    async def hmget(self, key: str, fields: list[str]) -> list[str | None]:
        return cast("list[str | None]", await self.run(self.client.hmget(key, fields)))

    async def ping(self) -> None:
        await self.run(self.client.ping())

    async def scan_users(self) -> list[str]:
        """Ids of users with a profile, memories, threads or attachments (SCAN over every primary).

        For operators (`python -m stores copy`): it walks the whole key space.
        """

        if self.closed:
            raise closed_error(f"Redis store at {self.config.redacted}")
        users = []
        try:  # no STORE_OP_TIMEOUT: a large key space takes as long as it takes; each SCAN step is short
            async for key in self.client.scan_iter(match=f"{NAMESPACE}:{{*}}:*", count=1000):
                user_id, _, kind = str(key)[len(NAMESPACE) + 2 :].partition("}:")
                if kind in _USER_ROOT_KEYS:
                    users.append(user_id)
        except (RedisError, *_UNAVAILABLE) as exc:
            raise self.error(exc) from exc
        return users

    async def check(self) -> None:
        """Connect and verify the server kind matches the URL (cluster vs single node)."""
        if isinstance(self.client, RedisCluster):
            await self.client.initialize()
            await self.client.ping()
            return
        await self.client.ping()
        info = await self.client.info("cluster")
        if str(info.get("cluster_enabled", "0")) == "1":
            raise ValueError(
                f"the Redis at {self.config.redacted} is a Redis Cluster node: use "
                "redis+cluster://host:port[,host:port…] (or rediss+cluster://) so keys reach the right node"
            )

    async def close(self) -> None:
        self.closed = True
        await self.client.aclose()


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned call's outcome so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
