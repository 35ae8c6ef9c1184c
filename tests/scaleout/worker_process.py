"""One agent worker process of the scale-out test: calls through the real entrypoint against several stores.

    python -m tests.scaleout.worker_process WORKER RUN TURNS SHARED OWN LABEL=URL [LABEL=URL ...]

Opens every store, prints READY, waits for a line on stdin (so all workers start
their calls together), then runs, on every store at once, one call for each of the
SHARED users every worker also calls, and one for each of OWN users only this
worker has. Prints one `RECORD <label> <json>` line per finished call.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import AsyncExitStack

from stores import UserStore, open_store
from tests.faults.calls import CallRecord, scripted_call


def shared_identity(run: str, n: int) -> str:
    return f"shared-{n}-{run}@scale.example.com"


def own_identity(run: str, worker: str, n: int) -> str:
    return f"{worker}-own-{n}-{run}@scale.example.com"


async def _pause(turn: int) -> None:
    await asyncio.sleep(0.02)  # let the other calls (and the other workers) interleave


async def main(worker: str, run: str, turns: int, shared: int, own: int, stores: dict[str, str]) -> None:
    async with AsyncExitStack() as stack:
        opened: dict[str, UserStore] = {}
        for label, url in stores.items():
            opened[label] = await stack.enter_async_context(await open_store(url))
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        async def one(label: str, identity: str, tag: str) -> tuple[str, CallRecord]:
            record = await scripted_call(opened[label], identity, tag, turns, after_turn=_pause, job_id=f"job-{tag}")
            return label, record

        calls = []
        for label in opened:
            for n in range(shared):
                calls.append(one(label, shared_identity(run, n), f"{worker}{label}s{n}"))
            for n in range(own):
                calls.append(one(label, own_identity(run, worker, n), f"{worker}{label}o{n}"))
        for label, record in await asyncio.gather(*calls):
            print(f"RECORD {label} {record.to_json()}", flush=True)


if __name__ == "__main__":
    name, run_id, turn_count, shared_count, own_count, *pairs = sys.argv[1:]
    urls = dict(pair.split("=", 1) for pair in pairs)
    asyncio.run(main(name, run_id, int(turn_count), int(shared_count), int(own_count), urls))
