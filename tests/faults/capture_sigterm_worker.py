"""A LiveKit worker process whose call has memory capture still pending when SIGTERM arrives.

    STORE_URL=... OPENAI_BASE_URL=... MEMORY_CAPTURE=background python -m tests.faults.capture_sigterm_worker

Like `tests.faults.sigterm_worker` (same AgentServer, same drain-then-close on
SIGTERM), but after GO on stdin the caller says the codewords given in CODEWORDS
(comma-separated), one turn each, and the script prints `SAID` and waits: the
capture endpoint is slow, so their capture is still pending at the signal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from livekit.agents import JobContext

from agent.worker import run_call
from tests.faults.sigterm_worker import _say, _tasks, main


async def capture_entrypoint(ctx: JobContext) -> None:
    session = await run_call(ctx)
    assert session is not None

    async def talk() -> None:
        await asyncio.to_thread(sys.stdin.readline)
        for word in os.environ["CODEWORDS"].split(","):
            await session.run(user_input=f"My codeword is {word}")
        _say("SAID")

    task = asyncio.create_task(talk())
    _tasks.add(task)
    _say("READY")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(capture_entrypoint))
