"""Voice turn: does stating a fact cost the caller time? Background capture vs the remember tool.

    .venv/bin/python -m bench.voice_turn [--turns 100] [--tools-turns 40] [--latency 0.3]

One scripted conversation (30 % of turns self-disclosure, "My ... is ...", the rest
questions and small talk) runs through a real livekit-agents `AgentSession` with
`MemoryAgent` on a SQLite store. Both the reply model (livekit-plugins-openai over
HTTP) and the capture model are a fake OpenAI server on loopback that answers after
`--latency` seconds (300 ms by default), so every figure is a ratio measured in
this run:

- reply time of a fact turn / of a plain turn (median), with MEMORY_CAPTURE=background
  (target <= 1.05) and, for comparison, with MEMORY_CAPTURE=tools (the reply LLM calls
  `remember`: two model round trips on fact turns);
- how long after the turn a stated fact is in the store (p95, target <= 2 s), polled
  through the store's public API; the clock starts when the user's turn is handed to
  the session;
- capture requests per 100 turns (what the pre-filter and coalescing save).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession, TurnHandlingOptions
from livekit.plugins import openai

from agent import MemoryAgent
from bench.common import percentile, run_main
from memory import user_session
from memory.settings import Settings
from stores import UserStore, open_store
from tests.fakes.openai_server import FakeOpenAIServer, capture_user_text, operations

FACT_SHARE = 0.3
THINGS = ["colour", "city", "band", "dish", "tree", "river", "painter", "sport", "season", "planet", "bird", "tool"]
WORDS = ["amber", "harbour", "violet", "granite", "meadow", "copper", "lantern", "juniper", "saffron", "cobalt"]
PLAIN = [
    "What's the weather usually like in {w}?",
    "Tell me a joke about {w}.",
    "How far is the moon from the sun?",
    "Can you suggest a name for a {w} shop?",
    "What rhymes with {w}?",
    "Thanks, that's helpful.",
    "How do you boil an egg?",
    "Okay, sounds good.",
]
_FACT_RE = re.compile(r"My favourite (\w+) number (\d+) is (\w+)")


@dataclass
class Run:
    """What one mode measured."""

    fact_s: list[float] = field(default_factory=list)
    plain_s: list[float] = field(default_factory=list)
    stored_after_s: list[float] = field(default_factory=list)
    capture_requests: int = 0
    reply_requests: int = 0
    turns: int = 0
    not_stored: int = 0


def script(turns: int, rng: random.Random) -> list[tuple[str, str | None]]:
    """(text, memory key if the turn states a fact): FACT_SHARE of the turns are facts, spread evenly."""
    facts = set(rng.sample(range(turns), round(turns * FACT_SHARE)))
    lines: list[tuple[str, str | None]] = []
    for n in range(turns):
        if n in facts:
            thing, word = rng.choice(THINGS), rng.choice(WORDS)
            lines.append((f"My favourite {thing} number {n} is {word}", f"{thing}_number_{n}"))
        else:
            lines.append((rng.choice(PLAIN).format(w=rng.choice(WORDS)), None))
    return lines


def reply(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The reply model: in tools mode a fact turn first calls `remember`, then answers."""
    messages = body.get("messages", [])
    tools = {t["function"]["name"] for t in body.get("tools") or []}
    last = messages[-1] if messages else {}
    content = last.get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    fact = _FACT_RE.search(text or "") if last.get("role") == "user" else None
    if fact and "remember" in tools:
        thing, n, word = fact.groups()
        args = {"category": "fact", "key": f"{thing} number {n}", "value": word}
        return [{"tool_call": {"name": "remember", "arguments": json.dumps(args)}}]
    return [{"text": "Sure, happy to help with that."}]


def capture(body: dict[str, Any]) -> str:
    """The capture model: remembers every fact stated in the exchange."""
    found = _FACT_RE.findall(capture_user_text(body))
    return operations(
        *[{"op": "remember", "category": "fact", "key": f"{t} number {n}", "value": w} for t, n, w in found]
    )


async def watch(store: UserStore, user_id: str, key: str, started: float, run: Run, limit: float) -> None:
    """Poll the store until `key` is there; record how long after `started` it appeared."""
    while time.perf_counter() - started < limit:
        if await store.memories.get(user_id, "fact", key) is not None:
            run.stored_after_s.append(time.perf_counter() - started)
            return
        await asyncio.sleep(0.01)
    run.not_stored += 1


async def conversation(
    mode: str, lines: list[tuple[str, str | None]], server: FakeOpenAIServer, store: UserStore, pause: float
) -> Run:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        memory_capture=mode,  # type: ignore[arg-type]
        openai_base_url=server.base_url,
        openai_api_key="sk-bench-not-real",  # type: ignore[arg-type]
    )
    run = Run(turns=len(lines))
    first_capture, first_reply = len(server.capture_requests), len(server.reply_requests)
    reply_llm = openai.LLM(model="bench-reply", base_url=server.base_url, api_key="sk-bench-not-real")
    turns: TurnHandlingOptions = {"turn_detection": None}
    watchers: list[asyncio.Task[None]] = []
    with user_session(f"bench-voice-{mode}-{random.random()}@example.com") as user_id:
        agent = MemoryAgent(store, settings=settings)
        async with AgentSession(llm=reply_llm, vad=None, turn_handling=turns) as session:
            await session.start(agent)
            await session.run(user_input="Hello there.")  # warm-up: connections, first-call costs
            for text, key in lines:
                started = time.perf_counter()
                if key is not None and mode == "background":
                    watchers.append(asyncio.create_task(watch(store, user_id, key, started, run, 30.0)))
                await session.run(user_input=text)
                took = time.perf_counter() - started
                if key is not None and mode == "tools":  # stored behind the tool's answer
                    watchers.append(asyncio.create_task(watch(store, user_id, key, started, run, 30.0)))
                (run.fact_s if key is not None else run.plain_s).append(took)
                await asyncio.sleep(pause)  # the caller speaks between turns
            await asyncio.gather(*watchers)
        await agent.aclose(10)
    await reply_llm.aclose()
    run.capture_requests = len(server.capture_requests) - first_capture
    run.reply_requests = len(server.reply_requests) - first_reply - 1  # minus the warm-up
    return run


def row(mode: str, run: Run) -> str:
    fact, plain = statistics.median(run.fact_s), statistics.median(run.plain_s)
    stored = percentile(run.stored_after_s, 95) if run.stored_after_s else float("nan")
    per_100 = 100 * run.capture_requests / run.turns
    return (
        f"| {mode} | {run.turns} | {plain * 1000:.0f} | {fact * 1000:.0f} | {fact / plain:.2f}x | "
        f"{stored:.2f} | {run.not_stored} | {per_100:.1f} | {100 * run.reply_requests / run.turns:.0f} |"
    )


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(11)
    server = FakeOpenAIServer(responder=reply, capture_responder=capture, latency=args.latency)
    await server.start()
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite:///{Path(tmp) / 'voice-turn.db'}")
        try:
            background = await conversation("background", script(args.turns, rng), server, store, args.pause)
            tools = await conversation("tools", script(args.tools_turns, rng), server, store, args.pause)
        finally:
            await store.aclose()
            await server.aclose()

    ratio = statistics.median(background.fact_s) / statistics.median(background.plain_s)
    stored_p95 = percentile(background.stored_after_s, 95)
    print(
        f"model latency {args.latency * 1000:.0f} ms (reply and capture), {FACT_SHARE:.0%} of turns state a fact, "
        f"{args.pause * 1000:.0f} ms between turns, store sqlite"
    )
    print()
    print(
        "| MEMORY_CAPTURE | turns | plain turn median ms | fact turn median ms | fact / plain | "
        "fact stored p95 s | facts not stored | capture requests / 100 turns | reply LLM calls / 100 turns |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(row("background", background))
    print(row("tools", tools))
    print()
    verdict = "ok" if ratio <= 1.05 else "MISSED"
    stored_verdict = "ok" if stored_p95 <= 2.0 and background.not_stored == 0 else "MISSED"
    print(f"- background: fact / plain reply time {ratio:.2f}x (target <= 1.05: {verdict})")
    print(f"- background: fact stored {stored_p95:.2f} s after the turn at p95 (target <= 2 s: {stored_verdict})")
    print(
        f"- background: {100 * background.capture_requests / background.turns:.1f} capture requests per 100 turns "
        f"({FACT_SHARE:.0%} of turns state a fact)"
    )
    return 0 if verdict == stored_verdict == "ok" else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=100, help="turns with MEMORY_CAPTURE=background (default 100)")
    parser.add_argument("--tools-turns", type=int, default=40, help="turns with MEMORY_CAPTURE=tools (default 40)")
    parser.add_argument("--latency", type=float, default=0.3, help="model latency in seconds (default 0.3)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between turns (default 0.3)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run_main(main(parse())))
