"""Three agent worker processes share one Redis and one Postgres: every write lands once, no user sees another's.

Each worker (tests/scaleout/worker_process.py) runs calls through the real
entrypoint on both stores at once: calls for users that every worker serves at
the same time (the same caller on several workers, as after a reconnect or on two
devices) and calls for users only it serves. Afterwards, read through a fresh
connection: every acknowledged memory and message is stored exactly once, each
user's profile was created by exactly one call (the others greeted a returning
caller), and no user's rows hold another user's data.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from stores import open_store
from tests.faults.calls import CallRecord, assert_stored_exactly_once, expected_messages
from tests.fixtures.redis_servers import RedisServer

REPO = Path(__file__).resolve().parents[2]
WORKERS = 3
TURNS = 4
SHARED_USERS = 3  # every worker calls each of them, concurrently
OWN_USERS = 3  # per worker


async def _start_worker(name: str, run: str, stores: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "PYTHONPATH": str(REPO),
        "MEMORY_CAPTURE": "tools",  # the scripted calls use the remember tool
    }
    args = [name, run, str(TURNS), str(SHARED_USERS), str(OWN_USERS), *(f"{k}={v}" for k, v in stores.items())]
    with log.open("wb") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.scaleout.worker_process", *args,
            env=env, cwd=log.parent, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _read_until(process: asyncio.subprocess.Process, marker: str, log: Path) -> None:
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        if not line:
            raise AssertionError(f"a worker exited before {marker}: {_tail(log)}")
        if line.decode().strip() == marker:
            return


@pytest.mark.slow
async def test_three_workers_one_redis_one_postgres(
    fresh_redis_server: RedisServer, postgres_store_url: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]  # the Postgres database is shared by the session's tests
    stores = {"r": fresh_redis_server.url, "p": postgres_store_url}
    logs = [tmp_path / f"w{n}.log" for n in range(WORKERS)]
    processes = [await _start_worker(f"w{n}", run, stores, logs[n]) for n in range(WORKERS)]
    try:
        await asyncio.gather(*(_read_until(p, "READY", log) for p, log in zip(processes, logs, strict=True)))
        for process in processes:  # every worker starts its calls at the same moment
            assert process.stdin is not None
            process.stdin.write(b"GO\n")
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 180)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, _tail(log)

    records: dict[str, list[CallRecord]] = defaultdict(list)
    for stdout, _ in outputs:
        for line in stdout.decode().splitlines():
            if line.startswith("RECORD "):
                _, label, payload = line.split(" ", 2)
                records[label].append(CallRecord.from_json(payload))
    calls_per_store = WORKERS * (SHARED_USERS + OWN_USERS)
    assert {label: len(recs) for label, recs in records.items()} == dict.fromkeys(stores, calls_per_store)

    for label, url in stores.items():
        for record in records[label]:
            assert record.messages == expected_messages(record.tag, TURNS)
            assert len(record.memories) == TURNS
        by_user: dict[str, list[CallRecord]] = defaultdict(list)
        for record in records[label]:
            by_user[record.user_id].append(record)
        assert len(by_user) == SHARED_USERS + WORKERS * OWN_USERS
        assert sorted(len(calls) for calls in by_user.values()).count(WORKERS) == SHARED_USERS
        async with await open_store(url) as store:
            for user_id, calls in by_user.items():
                firsts = [call.tag for call in calls if call.first_call]
                assert len(firsts) == 1, f"{label}: profile of {calls[0].identity} created by {firsts or 'no call'}"
                profile = await store.profiles.get(user_id)
                assert profile is not None and profile.identity == calls[0].identity
            await assert_stored_exactly_once(store, records[label])
