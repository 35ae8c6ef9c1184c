"""SIGTERM while memory capture is still pending: the worker captures and stores it before it exits.

The worker (tests/faults/capture_sigterm_worker.py) runs one call through the real
`run_call` against a slow capture endpoint (the fake OpenAI server here, 1 s per
capture request). When the signal arrives none of the codewords is stored yet; the
shutdown path (job shutdown -> `run_call`'s flush -> MemoryAgent.aclose) must send
the pending capture and store its result within the flush deadline.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from memory import identity_to_uuid
from stores import open_store
from tests.fakes.openai_server import FakeOpenAIServer, capture_user_text, operations
from tests.faults.test_sigterm_flush import CALLER, REPO, Worker

CODEWORDS = ["alpha7", "bravo8", "charlie9"]


def echo(body: dict[str, Any]) -> str:
    words = re.findall(r"codeword is (\w+)", capture_user_text(body))
    return operations(*[{"op": "remember", "category": "fact", "key": f"codeword {w}", "value": w} for w in words])


@pytest.mark.slow
async def test_sigterm_captures_and_stores_pending_turns_before_exit(tmp_path: Path) -> None:
    server = FakeOpenAIServer(capture_responder=echo)
    server.capture_latency = 1.0
    await server.start()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "PYTHONPATH": str(REPO),
        "STORE_URL": url,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-test-not-real",
        "MEMORY_CAPTURE": "background",
        "CODEWORDS": ",".join(CODEWORDS),
    }
    stderr_path = tmp_path / "worker.log"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.faults.capture_sigterm_worker",
            env=env, cwd=tmp_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    worker = Worker(process)
    user = identity_to_uuid(CALLER)
    try:
        await worker.until("READY")
        assert process.stdin is not None
        process.stdin.write(b"GO\n")
        await worker.until("SAID")
        async with await open_store(url) as reader:
            before = await reader.memories.list(user)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await server.aclose()
    log = stderr_path.read_text(errors="replace")

    assert code == 0, log[-3000:]
    assert before == [], "the capture finished before the signal; the test proves nothing"
    async with await open_store(url) as store:
        stored = await store.memories.list(user)
    assert sorted(m.value for m in stored) == sorted(CODEWORDS), log[-3000:]
    assert {m.source for m in stored} == {"voice"}
    assert all(m.thread_id and m.thread_id.startswith("thr_") and m.item_id for m in stored)
    assert server.max_capture_inflight == 1
    assert "0 dropped" in log and "0 writes lost" in log and "0 turns not captured" in log
