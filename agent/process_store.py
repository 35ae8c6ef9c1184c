"""One store per worker process, shared by every call it serves, opened by the first call.

Each store owns a connection pool. A store per call meant a pool per call, and 150
concurrent calls took 99 Postgres connections and then failed with "too many
clients". Calls now share one store and so one pool: its size (`pool_max` for
Postgres, `max_connections` for Redis) bounds the connections of the whole process,
and calls beyond it wait for a connection (within STORE_OP_TIMEOUT) instead of failing.

"Process" means event loop: a pool cannot be used from another loop. LiveKit runs
each job in its own process by default (one loop); with the thread executor each job
thread has its own loop and therefore its own store.

The store is opened on the first call (without migrations: the worker applied them
at start-up), and closed once, after the last call using it has flushed its writes.
If it cannot be opened, the call goes on: every store use raises
StoreUnavailableError (which the write-behind queues retry) while the opening is
retried in the background.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from contextlib import AbstractAsyncContextManager
from typing import Any

from memory.settings import Settings
from stores import StoreError, StoreUnavailableError, UserStore, open_store, redact_url

logger = logging.getLogger("memory_agent.process_store")

RETRY_INITIAL_S = 0.25
RETRY_MAX_S = 5.0

_holders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ProcessStore]] = weakref.WeakKeyDictionary()


class SharedStore(UserStore):
    """What calls hold: forwards to the process store once it is open, StoreUnavailableError before.

    `aclose()` does nothing: the store belongs to the process, not to one call.
    """

    def __init__(self, holder: ProcessStore) -> None:
        self._holder = holder
        self.url = redact_url(holder.url)

    def __getattr__(self, name: str) -> Any:
        # only reached for names not set here: `threads`, `memories`, `profiles` and backend extras
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._holder.require(), name)

    async def _forget_user(self, user_id: str) -> None:
        await self._holder.require()._forget_user(user_id)

    def erasing_in_bulk(self) -> AbstractAsyncContextManager[None]:
        return self._holder.require().erasing_in_bulk()

    async def _list_users(self) -> list[str]:
        return await self._holder.require()._list_users()

    async def ping(self) -> None:
        await self._holder.require().ping()

    async def aclose(self) -> None:
        """No-op: the process store is closed when the last call using it releases it."""


class ProcessStore:
    """The store of one event loop for one STORE_URL; calls `acquire()` it and `release()` it."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.store_url
        # the worker applied migrations when it started (cli.startup_problem); a call must not
        # take the migration lock or run DDL before the caller hears anything
        self._settings = settings.model_copy(update={"store_migrate_on_open": False})
        self.store = SharedStore(self)
        self._real: UserStore | None = None
        self._opened = asyncio.Event()
        self._opener: asyncio.Task[None] | None = None
        self.users = 0
        self.closed = False
        self.open_attempts = 0
        self.last_error: str | None = None

    @property
    def is_open(self) -> bool:
        return self._real is not None

    def require(self) -> UserStore:
        """The open store, or StoreUnavailableError (naming the redacted URL) while it is not open yet."""
        if self._real is not None:
            return self._real
        if self.closed:
            raise StoreUnavailableError(f"the store at {self.store.url} was closed: the worker is shutting down")
        reason = f" ({self.last_error})" if self.last_error else ""
        raise StoreUnavailableError(
            f"the store at {self.store.url} is not open yet{reason}; it is being retried in the background"
        )

    def acquire(self) -> SharedStore:
        """Count one more call using the store and start opening it if nobody has yet."""
        if self.closed:
            raise RuntimeError("this process store was closed; call process_store() for the current one")
        self.users += 1
        if self._opener is None:
            self._opener = asyncio.get_running_loop().create_task(self._open(), name="process-store-open")
        return self.store

    async def wait_open(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bound on the greeting, not a cancel scope
        """Wait up to `timeout` seconds for the store to open; True once it is."""
        if self._opened.is_set():
            return True
        try:
            await asyncio.wait_for(self._opened.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _open(self) -> None:
        delay = RETRY_INITIAL_S
        while True:
            self.open_attempts += 1
            try:
                self._real = await open_store(self.url, settings=self._settings)
            except (StoreError, ValueError, OSError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                log = logger.warning if isinstance(exc, StoreUnavailableError) else logger.error
                log("cannot open the store (attempt %d), retrying in %.2fs: %s", self.open_attempts, delay, exc)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            if self.open_attempts > 1:
                logger.info("store at %s open after %d attempts", self.store.url, self.open_attempts)
            self.last_error = None
            self._opened.set()
            return

    async def release(self) -> None:
        """One call is done (its writes flushed); the last one out closes the store."""
        self.users -= 1
        if self.users > 0:
            return
        self.closed = True
        loop_holders = _holders.get(asyncio.get_running_loop(), {})
        if loop_holders.get(self.url) is self:
            del loop_holders[self.url]  # the next call opens a fresh store
        if self._opener is not None and not self._opener.done():
            self._opener.cancel()
            await asyncio.gather(self._opener, return_exceptions=True)
        if self._real is not None:
            await self._real.aclose()
            logger.info("store at %s closed: no call is using it", self.store.url)


def process_store(settings: Settings) -> ProcessStore:
    """The store holder of the running event loop for `settings.store_url` (created on first use)."""
    loop_holders = _holders.setdefault(asyncio.get_running_loop(), {})
    holder = loop_holders.get(settings.store_url)
    if holder is None or holder.closed:
        holder = loop_holders[settings.store_url] = ProcessStore(settings)
    return holder


__all__ = ["ProcessStore", "SharedStore", "process_store"]
