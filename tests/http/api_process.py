"""`python -m api serve` as a real process on a free loopback port, for tests of the documented command."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fixtures.postgres_servers import free_port


@dataclass
class ServedApi:
    """The running API: its port and a client for it; `output` and `returncode` are set once it stopped."""

    port: int
    client: httpx.AsyncClient
    output: str = ""
    returncode: int | None = None


@asynccontextmanager
async def served_api(env: dict[str, str], cwd: Path) -> AsyncIterator[ServedApi]:
    """Start the API, yield once it answers /healthz (30 s at most), stop it with SIGINT as a user would."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api", "serve", "--port", str(port),
        env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    served: ServedApi | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(300):
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    if process.returncode is not None:
                        raise AssertionError("the API exited during startup") from None
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the API did not start within 30 s")
            served = ServedApi(port, client)
            yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        if served is not None:
            served.output, served.returncode = output.decode(errors="replace"), process.returncode
