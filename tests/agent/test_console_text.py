"""`python -m agent console --text` end to end against the fake OpenAI server (issue 14, item 10).

The console reads keys from a terminal, so it runs in a pseudo-terminal here; the
first turn used to crash with "Plugins must be registered on the main thread".
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes.util
import json
import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
REPLY = "Your console reply is ready."

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("portaudio") is None and not os.environ.get("CI"),  # CI must have it: fail there
    reason="console mode needs PortAudio: run scripts/setup.sh (installs libportaudio2) or apt-get install it",
)


def _responder(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"text": REPLY}]


class Terminal:
    """A child process on a pseudo-terminal; everything it prints is collected."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True)
        os.close(slave)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def type(self, text: str) -> None:
        for ch in text:
            os.write(self.master, ch.encode())
            time.sleep(0.02)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            os.close(self.master)


async def _until(condition: Any, terminal: Terminal, what: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if terminal.process.poll() is not None:
            raise AssertionError(
                f"the console exited ({terminal.process.returncode}) before {what}:\n{terminal.output}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {limit:g} s:\n{terminal.output[-4000:]}")
        await asyncio.sleep(0.1)


async def test_console_text_mode_answers_through_the_model(tmp_path: Path) -> None:
    async with FakeOpenAIServer(responder=_responder) as llm:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO),
            "TERM": "xterm",
            "COLUMNS": "120",
            "LINES": "40",
            "OPENAI_API_KEY": "sk-test-not-real",
            "OPENAI_BASE_URL": llm.base_url,
            "LLM_MODEL": "fake-model",
            "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        }
        terminal = Terminal([sys.executable, "-m", "agent", "console", "--text"], env, tmp_path)
        try:

            def typed_turn_answered() -> bool:
                return any("console test question" in json.dumps(r.get("messages")) for r in llm.requests)

            await _until(
                lambda: "Type to talk" in terminal.output or "User input" in terminal.output, terminal, "prompt"
            )
            await asyncio.sleep(1.0)  # the greeting turn may still be running
            await asyncio.to_thread(terminal.type, "console test question\r")
            await _until(typed_turn_answered, terminal, "model request with the typed text")
            await _until(
                lambda: REPLY.split()[0] in terminal.output.split("console test question", 1)[-1], terminal, "reply"
            )
            assert "must be registered on the main thread" not in terminal.output
            assert "Traceback" not in terminal.output, terminal.output[-4000:]
        finally:
            await asyncio.to_thread(terminal.close)
