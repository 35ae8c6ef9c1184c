"""The Redis change feed: pub/sub on `ma:{<user_id>}:changes`.

A single server uses PUBLISH/SUBSCRIBE; Redis Cluster uses sharded pub/sub
(SPUBLISH/SSUBSCRIBE), so a change travels only to the node owning the user's hash
slot (the same slot as the user's keys) instead of being broadcast to every node.
One pub/sub connection per store (per process) carries every followed user; one
listener task reads it and applies (un)subscriptions between reads. After any
connection error the listener rebuilds the connection, resubscribes, and its
subscribers get a `resync` (messages published meanwhile are lost by pub/sub).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio.client import PubSub

from stores.changes import Change, ListenerFeed
from stores.redis.client import Client, RedisConnection, describe, make_client
from stores.redis.keys import user_prefix

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # how long one read waits; (un)subscriptions are applied between reads
LISTENER_CONNECT_TIMEOUT_S = 5.0


class _Reconnected(asyncio.Event):
    """Set when the pub/sub connection connects again (redis-py wants a bound method as the callback)."""

    async def on_connect(self, connection: Any) -> None:
        self.set()


def channel(user_id: str) -> str:
    """The user's channel; its `{<user_id>}` hash tag puts it in the user's cluster slot."""
    return user_prefix(user_id) + "changes"


class RedisChangeFeed(ListenerFeed):
    kind = "Redis"

    def __init__(self, conn: RedisConnection) -> None:
        super().__init__()
        self._conn = conn
        self._subscribed: set[str] = set()  # channels the current connection subscribed

    async def _send(self, change: Change) -> None:
        client: Any = self._conn.client
        name = channel(change.user_id)
        if self._conn.cluster:
            await self._conn.run(client.spublish(name, change.payload()))
        else:
            await self._conn.run(client.publish(name, change.payload()))

    def _channel(self, user_id: str) -> str:
        return channel(user_id)

    async def _listen_loop(self) -> None:
        backoff = 0.1
        while not self._stopping():
            # its own client, outside the store's pool: a pub/sub connection is held for good,
            # and the store's commands must keep every connection of their pool
            client = make_client(self._conn.config, LISTENER_CONNECT_TIMEOUT_S)
            pubsub: PubSub = client.pubsub()
            self._subscribed = set()
            reconnected = _Reconnected()
            try:
                await self._follow(pubsub, reconnected)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost, server restarting, cluster moving slots
                self._set_all_listening(False)
                logger.warning(
                    "the Redis change listener of %s failed (%s); reconnecting in %.1fs",
                    self._conn.config.redacted,
                    describe(exc).replace(self._conn.config.password or "\0", "***"),
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
            finally:
                try:
                    await asyncio.shield(_close(pubsub, client))
                except Exception as exc:  # the connection is already broken
                    logger.debug("closing the Redis change listener failed: %s", type(exc).__name__)

    async def _follow(self, pubsub: PubSub, reconnected: _Reconnected) -> None:
        cluster = self._conn.cluster
        hooked = False
        while not self._stopping():
            await self._apply_subscriptions(pubsub, cluster)
            if not hooked and pubsub.connection is not None:
                # redis-py reconnects a pub/sub connection by itself and resubscribes: we must still resync
                pubsub.connection.register_connect_callback(reconnected.on_connect)
                hooked = True
            if not self._subscribed:
                self._wakeup.clear()
                if self._stopping():
                    return
                await self._wakeup.wait()
                continue
            if cluster:
                message = await pubsub.get_sharded_message(ignore_subscribe_messages=False, timeout=READ_TIMEOUT_S)
            else:
                message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=READ_TIMEOUT_S)
            if reconnected.is_set():
                reconnected.clear()
                self._set_all_listening(False)
                self._set_all_listening(True)
            if message is None:
                continue
            name = message.get("channel")
            name = name.decode() if isinstance(name, bytes) else name
            user_id = self._channels.get(str(name))
            if user_id is None:
                continue
            if message.get("type") in ("subscribe", "ssubscribe"):
                self._set_listening(user_id, True)
            elif message.get("type") in ("message", "smessage"):
                self._deliver(user_id, Change.from_payload(user_id, message.get("data") or ""))

    async def _apply_subscriptions(self, pubsub: PubSub, cluster: bool) -> None:
        wanted = set(self._channels)
        new = sorted(wanted - self._subscribed)
        gone = sorted(self._subscribed - wanted)
        if new:
            if cluster:
                await pubsub.ssubscribe(*new)
            else:
                await pubsub.subscribe(*new)
            self._subscribed.update(new)
        if gone:
            if cluster:
                await pubsub.sunsubscribe(*gone)
            else:
                await pubsub.unsubscribe(*gone)
            self._subscribed.difference_update(gone)


async def _close(pubsub: PubSub, client: Client) -> None:
    try:
        await pubsub.aclose()
    finally:
        await client.aclose()
