"""How long a change made in another process takes to reach a live call's memory cache.

    .venv/bin/python -m bench.change_feed [--backends sqlite,redis,postgres] [--samples 100]

For each backend a writer subprocess (another process, like the API) remembers or
forgets one memory of a user, one change at a time; this process runs what a call
runs: the user's `SessionMemories` cache following the change feed through
`agent.follow.ChangeFollower`. A sample is the wall-clock time from just before the
writer's store call to the moment the cache shows the change (polled every 1 ms),
so it includes the write itself, the publish, the delivery and the cache's re-read.
Printed per backend: median, p95, max, and p95 as a share of the 1 s target.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from agent.cache import SessionMemories
from agent.follow import ChangeFollower
from bench.common import DEFAULT_URLS, percentile, run_main
from stores import open_store

TARGET_S = 1.0
OBSERVE_TIMEOUT_S = 10.0
REPO = Path(__file__).resolve().parents[1]


async def writer(url: str, user_id: str) -> None:
    """The other process: one change per stdin line (`remember VALUE` / `forget`), timestamps on stdout."""
    async with await open_store(url) as store:
        print("READY", flush=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if not line:
                return
            op, _, value = line.partition(" ")
            started = time.time()
            if op == "remember":
                await store.memories.remember(user_id, "preference", "drink", value, source="api")
            else:
                await store.memories.forget(user_id, "preference", "drink", source="api")
            print(f"WROTE {started:.6f}", flush=True)


async def measure_backend(label: str, url: str, samples: int) -> list[float] | None:
    try:
        store = await open_store(url)  # migrates a new database before the writer uses it
    except Exception as exc:
        print(f"{label}: skipped ({type(exc).__name__}: {exc})")
        return None
    user_id = str(uuid.uuid4())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.change_feed", "--writer", url, user_id,
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    memories = SessionMemories(store, user_id, source="voice")
    follower = ChangeFollower(store, memories)
    latencies: list[float] = []
    try:
        follower.start()
        memories.start_loading()
        await memories.wait_loaded(OBSERVE_TIMEOUT_S)
        deadline = time.monotonic() + OBSERVE_TIMEOUT_S
        while not store.changes.is_listening(user_id) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        assert (await process.stdout.readline()).strip() == b"READY"
        for n in range(samples):
            value = f"tea-{n}" if n % 2 == 0 else None  # alternate remember / forget
            process.stdin.write(f"remember {value}\n".encode() if value else b"forget\n")
            await process.stdin.drain()
            wrote = (await process.stdout.readline()).decode().split()
            started = float(wrote[1])
            seen = await _observe(memories, value)
            latencies.append(seen - started)
    finally:
        process.stdin.close()
        await process.wait()
        await follower.aclose()
        await memories.aclose(5)
        await store.forget_user(user_id)
        await store.aclose()
    return latencies


async def _observe(memories: SessionMemories, value: str | None) -> float:
    deadline = time.monotonic() + OBSERVE_TIMEOUT_S
    while time.monotonic() < deadline:
        values = {m.value for m in memories.snapshot()}
        if (value in values) if value else not values:
            return time.time()
        await asyncio.sleep(0.001)
    raise RuntimeError(f"the cache did not show the change within {OBSERVE_TIMEOUT_S}s")


async def main(backends: list[str], samples: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        urls = {**DEFAULT_URLS, "sqlite": f"sqlite:///{tmp}/change-feed.db"}
        print(f"### Change feed: another process's change -> a live call's cache, {samples} changes each\n")
        print("| backend | median ms | p95 ms | max ms | p95 / 1 s target |")
        print("|---|---:|---:|---:|---:|")
        for label in backends:
            latencies = await measure_backend(label, urls[label], samples)
            if latencies is None:
                continue
            ms = [s * 1000 for s in latencies]
            p95 = percentile(ms, 95)
            print(
                f"| {label} | {percentile(ms, 50):.1f} | {p95:.1f} | {max(ms):.1f} | {p95 / (TARGET_S * 1000):.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,redis,postgres")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--writer", nargs=2, metavar=("URL", "USER_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        asyncio.run(writer(*args.writer))
        sys.exit(0)
    sys.exit(run_main(main([b.strip() for b in args.backends.split(",") if b.strip()], args.samples)))
