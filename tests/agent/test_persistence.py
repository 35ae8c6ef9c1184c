"""A returning caller is remembered by a brand-new worker process on the same store (SQLite, Redis)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from agent.greeting import FIRST_CALL

REPO = Path(__file__).resolve().parents[2]
IDENTITY = "priya@example.com"


async def run_call_process(url: str, scenario: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agent.call_script", url, IDENTITY, scenario,
        cwd=os.getcwd(), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
    return json.loads(stdout.decode().strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_new_process_recalls_the_returning_caller(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{backend}_store_url")
    first = await run_call_process(url, "first")
    assert first["greeting"] == FIRST_CALL
    assert first["tool_outputs"] == [
        "Remembered (personal) name: Priya",
        "Remembered (preference) favourite colour: saffron",
    ]

    again = await run_call_process(url, "returning")
    assert "returning" in str(again["greeting"]) and "'Priya'" in str(again["greeting"])
    assert again["tool_outputs"] == ["Remembered about the user (1):\n- preference / favourite colour: saffron"]
