"""SIGTERM to a worker in the middle of a burst of transcript writes: everything said is stored before it exits.

The worker (tests/faults/sigterm_worker.py) is LiveKit's AgentServer running one
call through the real `run_call`. Redis is told to hold every write
(`CLIENT PAUSE ... WRITE`) from before the burst until after the SIGTERM, so at
the moment of the signal none of the burst is stored: the whole queue must be
written by the shutdown path (job shutdown -> `run_call`'s shutdown callback ->
write-behind flush), or it is lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from memory import identity_to_uuid
from memory.settings import Settings
from stores import open_store
from tests.faults.calls import stored_transcripts
from tests.fixtures.redis_servers import RedisServer

REPO = Path(__file__).resolve().parents[2]
CALLER = "mock_user"  # the participant of LiveKit's mock room used for simulated jobs
ACKS_BEFORE_SIGTERM = 40
PAUSE_MS = 6000  # safety net: Redis lifts the pause by itself after this long


class Worker:
    """The worker process and the lines it printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.acked: list[str] = []

    async def line(self, timeout: float = 60) -> str:  # noqa: ASYNC109 - a bound for a test helper
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise AssertionError("the worker exited early")
        text = raw.decode().rstrip("\n")
        if text.startswith("ACK "):
            self.acked.append(json.loads(text[4:]))
        return text

    async def until(self, predicate_line: str | None = None, acks: int = 0) -> None:
        while not (predicate_line is None and len(self.acked) >= acks):
            text = await self.line()
            if predicate_line is not None and text == predicate_line:
                return


@pytest.mark.slow
async def test_sigterm_during_a_burst_flushes_every_acknowledged_message(
    fresh_redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "PYTHONPATH": str(REPO),
        "STORE_URL": fresh_redis_server.url,
    }
    stderr_path = tmp_path / "worker.log"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.faults.sigterm_worker",
            env=env, cwd=tmp_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    worker = Worker(process)
    admin = fresh_redis_server.client()
    try:
        await worker.until("READY")
        await asyncio.to_thread(admin.execute_command, "CLIENT", "PAUSE", PAUSE_MS, "WRITE")
        assert process.stdin is not None
        process.stdin.write(b"GO\n")
        await worker.until(acks=ACKS_BEFORE_SIGTERM)

        # this read waits for the pause (scripts count as writes), longer than the default STORE_OP_TIMEOUT
        reader_settings = Settings(store_op_timeout=PAUSE_MS / 1000 + 10)
        async with await open_store(fresh_redis_server.url, settings=reader_settings) as reader:
            stored = sum(map(len, await stored_transcripts(reader, identity_to_uuid(CALLER))))
        process.send_signal(signal.SIGTERM)
        acked_at_signal = len(worker.acked)
        await asyncio.sleep(1.0)  # the worker is shutting down against a store that still holds its writes
        await asyncio.to_thread(admin.execute_command, "CLIENT", "UNPAUSE")

        while True:  # ACKs printed until the session closed count too
            try:
                await worker.line(timeout=30)
            except AssertionError:
                break
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        admin.close()
    log = stderr_path.read_text(errors="replace")

    assert code == 0, log[-3000:]
    assert stored < acked_at_signal - ACKS_BEFORE_SIGTERM // 2, "the burst was stored before the signal"
    async with await open_store(fresh_redis_server.url) as store:
        [transcript] = await stored_transcripts(store, identity_to_uuid(CALLER))
    assert transcript == worker.acked, "the stored transcript differs from what the call acknowledged"
    assert len(transcript) >= ACKS_BEFORE_SIGTERM and "burst message 0" in transcript
    assert "0 writes lost" in log and "could NOT be stored" not in log
