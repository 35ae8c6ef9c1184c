"""The agent worker and the API refuse to start against a store that is down, saying so without the password.

Each program runs as its own process, as a deployment runs it, with STORE_URL
pointing at a loopback port nothing listens on. LiveKit and OpenAI settings are
dummies (the worker must fail on the store before it ever dials LiveKit).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.fixtures.postgres_servers import free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-store-pw-41"
SECRETS = (PASSWORD, "lk-secret-value-77", "sk-dummy-openai-99")


def _env(store_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",
        "PYTHONPATH": str(REPO),
        "STORE_URL": store_url,
        "STORE_CONNECT_TIMEOUT": "3",
        "LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}",
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": SECRETS[1],
        "OPENAI_API_KEY": SECRETS[2],
        "SUPABASE_URL": "https://example.supabase.co",  # the API checks its auth settings before the store
    }


async def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        raise AssertionError(
            f"`{' '.join(args)}` kept running against a dead store:\n{output.decode()[-3000:]}"
        ) from None
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


STORES = {
    "postgres": ("postgresql://app:{pw}@127.0.0.1:{port}/app", "postgresql://app:***@127.0.0.1:{port}/app"),
    "redis": ("redis://:{pw}@127.0.0.1:{port}/0", "redis://:***@127.0.0.1:{port}/0"),
}
PROGRAMS = {
    "agent": ["-m", "agent", "start"],
    "api": ["-m", "api", "serve", "--port", "0"],
}


@pytest.mark.parametrize("backend", sorted(STORES))
@pytest.mark.parametrize("program", sorted(PROGRAMS))
async def test_store_down_at_startup(program: str, backend: str, tmp_path: Path) -> None:
    port = free_port()
    url_form, redacted_form = STORES[backend]
    code, output = await _run(PROGRAMS[program], _env(url_form.format(pw=PASSWORD, port=port)), tmp_path)

    assert code == 3, output[-3000:]  # EXIT_STORE of both programs
    assert "Traceback" not in output, output[-3000:]  # a message for a person, not a stack trace
    assert redacted_form.format(port=port) in output, output[-3000:]  # names the store it could not reach
    assert "check that the server is running" in output  # and what to do about it
    for secret in SECRETS:
        assert secret not in output
