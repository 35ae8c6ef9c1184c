"""A LiveKit worker process with one call, for the SIGTERM test.

    STORE_URL=redis://... python -m tests.faults.sigterm_worker

LiveKit's `AgentServer` runs unregistered (there is no LiveKit server here) and is
handed one simulated job, exactly as `console` mode does; the job runs the real
`agent.worker.run_call` (store opened from STORE_URL, profile, memories,
transcript) with a scripted LLM. Output, one line each:
  READY           the call is up; the script then waits for a line on stdin
  ACK <json>      a message of the call was accepted (the transcript owns it now)
On SIGTERM the process does what `python -m agent start` (LiveKit's CLI) does:
drain for at most `drain_timeout` seconds, then close the server, which shuts the
job down and runs the shutdown callbacks `run_call` registered (the flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from typing import Any

from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess, llm

from agent.worker import run_call
from tests.fakes.scripted_llm import ScriptedLLM

DRAIN_SECONDS = 1  # a deployment sets this to fit its orchestrator's grace period
BURST = 10_000  # turns; the burst runs until the shutdown closes the session
_tasks: set[asyncio.Task[None]] = set()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")  # one write per line: the job thread and the main thread both print
    sys.stdout.flush()


def _echo(chat_ctx: llm.ChatContext, tools: list[Any]) -> list[str]:
    users = [item.text_content for item in chat_ctx.items if item.type == "message" and item.role == "user"]
    return [f"Echo: {users[-1] if users else ''}"]


def setup(proc: JobProcess) -> None:
    """Runs in the job's process/thread before the job: the overrides `run_call` reads (no store: STORE_URL)."""
    proc.userdata.update(
        llm=ScriptedLLM([["Hello."], *([_echo] * BURST)]),
        session_options={"vad": None, "turn_handling": {"turn_detection": None}},
    )


async def burst_entrypoint(ctx: JobContext) -> None:
    session = await run_call(ctx)
    assert session is not None

    def ack(item: Any) -> None:
        if item.type == "message" and item.role in ("user", "assistant") and item.text_content:
            _say("ACK " + json.dumps(item.text_content.strip()))

    for item in session.history.items:  # the greeting may already be there
        ack(item)
    session.on("conversation_item_added", lambda ev: ack(ev.item))

    async def burst() -> None:
        await asyncio.to_thread(sys.stdin.readline)
        for n in range(BURST):
            try:
                await session.run(user_input=f"burst message {n}")
            except Exception:  # the session was closed by the shutdown: the call is over
                return

    task = asyncio.create_task(burst())
    _tasks.add(task)
    _say("READY")


async def main(entrypoint: Any = burst_entrypoint) -> None:
    server = AgentServer(
        setup_fnc=setup,
        job_executor_type=JobExecutorType.THREAD,
        drain_timeout=DRAIN_SECONDS,
        num_idle_processes=0,
        port=0,
    )
    server.rtc_session()(entrypoint)
    terminated = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)

    @server.once("worker_started")
    def _start_call() -> None:
        _tasks.add(asyncio.create_task(server.simulate_job("sigterm-room", fake_job=True)))

    running = asyncio.create_task(server.run(devmode=False, unregistered=True))
    await terminated.wait()
    logging.getLogger("sigterm_worker").info("SIGTERM: draining, then shutting down")
    with contextlib.suppress(TimeoutError):
        await server.drain()
    await server.aclose()
    with contextlib.suppress(asyncio.CancelledError):
        await running


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
