"""The Redis backend: `redis://`, `rediss://`, `redis+cluster://` and `rediss+cluster://` URLs.

Plain Redis 7 commands and Lua (no modules). Every key of a user carries the hash tag
`{<user_id>}`, so each write is one atomic script even on Redis Cluster; pages are
lexicographic sorted-set ranges from the cursor, O(log n + limit). See `keys.py`.
"""

from __future__ import annotations

import asyncio

from memory.settings import Settings
from stores.errors import StoreUnavailableError
from stores.redis.client import RedisConnection, describe, make_client
from stores.redis.durability import check_durability
from stores.redis.store import RedisStore
from stores.redis.url import RedisUrl, parse_redis_url

__all__ = ["RedisStore", "RedisUrl", "open", "parse_redis_url"]

# leave the registry's own deadline (the full connect timeout) a moment to spare,
# so the user sees our specific reason rather than a bare timeout
_OPEN_DEADLINE_SHARE = 0.9


async def open(url: str, settings: Settings) -> RedisStore:
    """Connect to the Redis (or Redis Cluster) at `url` and check it answers.

    Raises ValueError for a malformed URL or the wrong kind of server, and
    StoreUnavailableError (naming the URL with its password redacted) when the server
    cannot be reached within `settings.store_connect_timeout` seconds.
    """
    config = parse_redis_url(url, settings.store_thread_ttl_seconds)
    timeout = settings.store_connect_timeout
    op_timeout = settings.store_op_timeout
    conn = RedisConnection(make_client(config, timeout, op_timeout), config, op_timeout)
    try:
        async with asyncio.timeout(timeout * _OPEN_DEADLINE_SHARE):
            await conn.check()
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, ValueError | StoreUnavailableError) or not isinstance(exc, Exception):
            raise
        if "cluster mode is not enabled" in str(exc).lower():
            raise ValueError(
                f"the Redis at {config.redacted} is not a cluster node: use redis://host:port/db "
                "(or rediss://) for a single Redis server"
            ) from None
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout * _OPEN_DEADLINE_SHARE:.1f}s"
        else:
            reason = describe(exc)
            if config.password:
                reason = reason.replace(config.password, "***")
        raise StoreUnavailableError(
            f"cannot reach Redis at {config.redacted} ({reason}); check that the server is running and "
            "reachable and that the URL's host, port and password are right (STORE_CONNECT_TIMEOUT="
            f"{timeout:g}s)"
        ) from None
    try:
        async with asyncio.timeout(timeout * _OPEN_DEADLINE_SHARE):
            await check_durability(conn.client, config.redacted, require=settings.store_require_durable)
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, TimeoutError):
            raise StoreUnavailableError(f"the Redis at {config.redacted} stopped answering while opening") from None
        raise
    return RedisStore(conn)
