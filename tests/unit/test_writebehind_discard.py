"""WriteBehind.discard: queued writes never reach the store; the one in flight finishes once, never retried."""

from __future__ import annotations

import asyncio

from agent.writebehind import WriteBehind
from stores import StoreUnavailableError


async def test_discard_drops_queued_writes_and_lets_the_one_in_flight_finish() -> None:
    stored: list[str] = []
    done: list[str] = []
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()
        stored.append("in flight")

    async def later(name: str) -> None:
        stored.append(name)

    writes = WriteBehind("test")
    writes.submit("in flight", slow, on_done=lambda: done.append("in flight"))
    writes.submit("queued 1", lambda: later("queued 1"), on_done=lambda: done.append("queued 1"))
    writes.submit("queued 2", lambda: later("queued 2"), on_done=lambda: done.append("queued 2"))
    await asyncio.sleep(0.01)  # the first write is being stored

    assert writes.discard() == 2
    assert sorted(done) == ["queued 1", "queued 2"]  # dropped writes report done at once
    release.set()
    assert await writes.flush(5)
    assert stored == ["in flight"] and done[-1] == "in flight"
    assert writes.discarded == 2 and writes.pending == 0
    await writes.aclose(1)


async def test_a_discarded_write_that_fails_is_not_retried() -> None:
    attempts = 0
    started = asyncio.Event()

    async def failing() -> None:
        nonlocal attempts
        attempts += 1
        started.set()
        await asyncio.sleep(0.05)
        raise StoreUnavailableError("the store is down")

    writes = WriteBehind("test", initial_backoff=0.01)
    writes.submit("failing", failing)
    await started.wait()
    writes.discard()
    assert await writes.flush(5)
    await asyncio.sleep(0.1)
    assert attempts == 1  # a normal write would be retried until stored
    await writes.aclose(1)


async def test_after_discard_the_queue_takes_new_writes() -> None:
    stored: list[str] = []
    writes = WriteBehind("test")
    writes.discard()

    async def write() -> None:
        stored.append("new")

    writes.submit("new", write)
    assert await writes.flush(5)
    assert stored == ["new"]
    await writes.aclose(1)
