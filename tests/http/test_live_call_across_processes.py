"""A live call in a worker process follows what the API process changes, and DELETE /me ends it.

The worker (tests/http/live_call_worker.py) is LiveKit's AgentServer with one call
through the real `run_call`; the API is the real app over HTTP on loopback, with a
fake LiveKit server (Twirp) recording what it is asked. Both processes share one
store (SQLite file, Redis, Postgres). Bounds are generous (shared machine): the
latency claim (p95 within 1 s) is measured by bench/change_feed.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memory import identity_to_uuid
from memory.settings import Settings
from tests.fakes.livekit_server import fake_livekit
from tests.http.conftest import RunningApp, Tokens, serve

REPO = Path(__file__).resolve().parents[2]
CALLER = "mock_user"  # the participant of LiveKit's mock room used for simulated jobs
BOUND = 5.0  # seconds; generous on a loaded machine
QUESTION = "what is my favourite colour?"  # recall picks the memories relevant to the turn


class Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self, timeout: float = 60) -> str:  # noqa: ASYNC109 - a bound for a test helper
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise AssertionError("the worker exited early")
        return raw.decode().rstrip("\n")

    async def expect(self, *wanted: str, timeout: float = 60) -> str:  # noqa: ASYNC109 - a bound for a test helper
        deadline = time.monotonic() + timeout
        while True:
            text = await self.line(max(0.1, deadline - time.monotonic()))
            if text.split(" ", 1)[0] in wanted:
                return text

    async def turn(self, text: str) -> str:
        """The memory block of the reply to `text` (or CLOSED / ENDED when the call is over)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"TURN {text}\n".encode())
        await self.process.stdin.drain()
        reply = await self.expect("REPLY", "CLOSED", "ENDED", timeout=30)
        return str(json.loads(reply[6:])) if reply.startswith("REPLY ") else reply

    async def until_reply(self, predicate: Callable[[str], bool], what: str) -> float:
        started = time.monotonic()
        while time.monotonic() - started < BOUND:
            if predicate(await self.turn(QUESTION)):
                return time.monotonic() - started
            await asyncio.sleep(0.02)
        raise AssertionError(f"the call's reply context did not reflect {what} within {BOUND}s")


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def shared_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_store_url"))


@pytest.mark.slow
async def test_changes_over_http_reach_the_live_call_and_delete_me_ends_it(
    shared_url: str, settings_factory: Callable[..., Settings], tokens: Tokens, tmp_path: Path
) -> None:
    user = identity_to_uuid(CALLER)
    room = f"user-{user}"
    async with fake_livekit() as livekit:
        livekit.rooms = [room]
        settings = settings_factory(
            store_url=shared_url,
            livekit_url=livekit.url,
            livekit_api_key=livekit.api_key,
            livekit_api_secret=livekit.api_secret,
        )
        async with serve(settings) as api:  # opens (and migrates) the store before the worker uses it
            auth = api.auth(tokens.mint(user))
            put = await api.client.put(
                "/me/memories/preference/favourite colour", json={"value": "green-before"}, headers=auth
            )
            assert put.status_code == 200, put.text
            worker = await _start_worker(shared_url, room, tmp_path)
            try:
                await worker.expect("READY")
                assert "green-before" in await worker.turn(QUESTION)

                put = await api.client.put(
                    "/me/memories/preference/favourite colour", json={"value": "teal-after"}, headers=auth
                )
                assert put.status_code == 200
                await worker.until_reply(lambda ctx: "teal-after" in ctx and "green-before" not in ctx, "the change")

                gone = await api.client.delete("/me/memories/preference/favourite colour", headers=auth)
                assert gone.status_code == 204
                await worker.until_reply(lambda ctx: "teal-after" not in ctx, "the forget")

                assert await _stored(api, user), "the call stored its transcript and profile before the erase"
                assert (await api.client.delete("/me", headers=auth)).status_code == 204
                assert [r.room for r in livekit.calls("DeleteRoom")] == [room]
                await worker.expect("ENDED", timeout=BOUND)

                assert await worker.turn("are you still there? remember my bike is red") in ("CLOSED", "ENDED")
                await asyncio.sleep(1.5)  # anything the call still had queued would be stored by now
                assert not await _stored(api, user), "nothing of the user is written after DELETE /me"
            finally:
                await _stop(worker)


async def _stored(api: RunningApp, user: str) -> bool:
    data = await api.services.store.export_user(user)
    return bool(data["profile"] or data["memories"] or data["threads"])


async def _start_worker(url: str, room: str, tmp_path: Path) -> Worker:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "PYTHONPATH": str(REPO),
        "STORE_URL": url,
        "MEMORY_CAPTURE": "tools",
    }
    with (tmp_path / "worker.log").open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.http.live_call_worker", room,
            env=env, cwd=tmp_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    return Worker(process)


async def _stop(worker: Worker) -> None:
    if worker.process.returncode is None:
        worker.process.terminate()
        try:
            await asyncio.wait_for(worker.process.wait(), 15)
        except TimeoutError:
            worker.process.kill()
            await worker.process.wait()
