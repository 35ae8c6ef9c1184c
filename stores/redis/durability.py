"""Is the Redis behind STORE_URL keeping anything on disk?

A Redis with neither AOF (`appendonly no`) nor RDB snapshots (`save ""`) loses every
thread, memory and profile on a restart, and returning callers are then greeted as
new: silently, unless somebody looks. At open the store reads `CONFIG GET appendonly
save` (on every primary of a cluster) and logs a loud WARNING; with
STORE_REQUIRE_DURABLE=true it refuses such a server instead. Managed services often
disable CONFIG: then nothing can be known, which is logged, and refused only when
durability is required.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from stores.errors import StoreError

logger = logging.getLogger("stores.redis")


class NotDurableError(StoreError):
    """STORE_REQUIRE_DURABLE=true and the Redis server keeps no data on disk (or cannot say)."""


async def _configs(client: Any) -> list[dict[str, str]]:
    if isinstance(client, RedisCluster):
        return [
            await client.config_get("appendonly", "save", target_nodes=node)  # type: ignore[misc]
            for node in client.get_primaries()
        ]
    return [await client.config_get("appendonly", "save")]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def check_durability(client: Any, redacted: str, *, require: bool) -> bool | None:
    """True if every node persists (AOF or RDB), False if one keeps nothing, None if unknown."""
    try:
        configs = await _configs(client)
    except RedisError as exc:
        if require:
            raise NotDurableError(
                f"STORE_REQUIRE_DURABLE=true, but the Redis at {redacted} does not allow CONFIG GET "
                f"({type(exc).__name__}), so its persistence cannot be checked; check the provider's "
                "persistence settings and unset STORE_REQUIRE_DURABLE, or allow CONFIG GET for this user"
            ) from None
        logger.info("could not read the persistence settings of the Redis at %s (CONFIG GET not allowed)", redacted)
        return None
    for config in configs:
        values = {_text(k).lower(): _text(v) for k, v in config.items()}
        if values.get("appendonly", "").lower() == "no" and not values.get("save", "x").strip():
            if require:
                raise NotDurableError(
                    f"STORE_REQUIRE_DURABLE=true, but the Redis at {redacted} keeps no data on disk "
                    '(appendonly no, save ""): enable AOF (`appendonly yes`) or RDB snapshots, or point '
                    "STORE_URL at a server that persists"
                )
            logger.warning(
                'the Redis at %s keeps no data on disk (appendonly no, save ""): a restart or crash loses '
                "every thread, memory and profile, and returning callers are greeted as new. Enable AOF "
                "(`appendonly yes`) or RDB snapshots, or set STORE_REQUIRE_DURABLE=true to refuse such a server",
                redacted,
            )
            return False
    return True
