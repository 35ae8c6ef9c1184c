"""A LiveKit worker process with one live call, for the cross-process change-feed test.

    STORE_URL=... python -m tests.http.live_call_worker ROOM

LiveKit's `AgentServer` runs unregistered and is handed one simulated job (as in
`console` mode); the job runs the real `agent.worker.run_call` (process store from
STORE_URL, profile, memories, transcript, change feed) with a scripted LLM.
Lines on stdin: `TURN <text>` makes the caller say <text>. Lines on stdout:
  READY            the call is up and follows its user's changes
  REPLY <json>     the memory block the LLM request of that turn carried ("" if none)
  CLOSED           a turn was refused: the call is over
  ENDED            the call's session closed (e.g. after DELETE /me)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time

from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess, llm

from agent.memory_agent import RECALL_ITEM_ID
from agent.worker import run_call
from tests.fakes.scripted_llm import ScriptedLLM

_tasks: set[asyncio.Task[None]] = set()
_llm = ScriptedLLM([], default_text="ok")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def setup(proc: JobProcess) -> None:
    proc.userdata.update(llm=_llm, session_options={"vad": None, "turn_handling": {"turn_detection": None}})


async def live_entrypoint(ctx: JobContext) -> None:
    session = await run_call(ctx)
    assert session is not None
    session.on("close", lambda _ev: _say("ENDED"))
    memories = session.current_agent.memories  # type: ignore[attr-defined]
    feed = memories.store.changes
    deadline = time.monotonic() + 30
    while not feed.is_listening(memories.user_id) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a flag
        await asyncio.sleep(0.01)

    async def turns() -> None:
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if not line:
                return
            if not line.startswith("TURN "):
                continue
            try:
                await session.run(user_input=line[5:])
            except Exception:  # the session was closed: the call is over
                _say("CLOSED")
                continue
            request = _llm.requests[-1]
            recall = [i for i in request.items if isinstance(i, llm.ChatMessage) and i.id == RECALL_ITEM_ID]
            block = recall[0].text_content or "" if recall else ""
            _say("REPLY " + json.dumps(block))

    task = asyncio.create_task(turns())
    _tasks.add(task)
    _say("READY")


async def main(room: str) -> None:
    server = AgentServer(
        setup_fnc=setup, job_executor_type=JobExecutorType.THREAD, num_idle_processes=0, port=0, drain_timeout=1
    )
    server.rtc_session()(live_entrypoint)
    terminated = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)

    @server.once("worker_started")
    def _start_call() -> None:
        _tasks.add(asyncio.create_task(server.simulate_job(room, fake_job=True)))

    running = asyncio.create_task(server.run(devmode=False, unregistered=True))
    await terminated.wait()
    await server.aclose()
    with contextlib.suppress(asyncio.CancelledError):
        await running


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(sys.argv[1]))
