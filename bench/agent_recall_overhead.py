"""Voice path: how much time memory adds before the LLM request.

    .venv/bin/python -m bench.agent_recall_overhead [--memories 1000] [--turns 300] [--store memory://]

Two agents answer the same user turns in the same process, in alternating blocks:
`MemoryAgent` (the caller has `--memories` memories, recall injected in `llm_node`
from the session cache) and a plain `livekit.agents.Agent` without memory. For every
LLM call it records the time from entering `llm_node` to the moment the LLM is asked
(`chat()` of an offline scripted LLM, so no network is involved) and prints p50/p95
of both, and what memory adds (difference and ratio), next to the recall budget.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import AsyncIterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livekit.agents import Agent, AgentSession, FlushSentinel, ModelSettings, TurnHandlingOptions, llm

from agent import MemoryAgent
from bench.common import percentile, run_main
from memory import user_session
from memory.categorize import KNOWN_CATEGORIES
from stores import UserStore, open_store
from tests.fakes.scripted_llm import ScriptedLLM

WORDS = [
    "coffee",
    "tea",
    "jazz",
    "hiking",
    "sister",
    "brother",
    "paris",
    "tokyo",
    "python",
    "guitar",
    "chess",
    "running",
    "yoga",
    "sushi",
    "pizza",
    "blue",
    "green",
    "garden",
    "novel",
    "poetry",
    "cycling",
    "marathon",
    "spanish",
    "piano",
    "violin",
    "camping",
    "kayak",
    "painting",
    "baking",
    "cats",
    "dogs",
    "football",
]
QUESTIONS = [
    "what is my favourite {w}",
    "do you remember anything about {w}",
    "tell me about my {w} and {v}",
    "I was thinking about {w} today",
    "can you recommend something for {w} lovers",
    "what do you know about me",
]


class _Timed:
    """Records when `llm_node` is entered; the scripted LLM records when it is asked."""

    entered: list[float]

    def _mark(self) -> None:
        self.entered.append(time.perf_counter())


class TimedMemoryAgent(_Timed, MemoryAgent):
    def __init__(self, store: UserStore) -> None:
        super().__init__(store)
        self.entered = []

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        self._mark()
        async for chunk in MemoryAgent.llm_node(self, chat_ctx, tools, model_settings):
            yield chunk


class TimedPlainAgent(_Timed, Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a friendly voice assistant.")
        self.entered = []

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        self._mark()
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            yield chunk


async def seed(store: UserStore, user_id: str, count: int, rng: random.Random) -> None:
    categories = sorted(KNOWN_CATEGORIES)
    for n in range(count):
        words = rng.sample(WORDS, 3)
        await store.memories.remember(
            user_id, categories[n % len(categories)], f"{words[0]} {n}", f"likes {words[1]} and {words[2]} ({n})"
        )


def question(rng: random.Random) -> str:
    w, v = rng.sample(WORDS, 2)
    return rng.choice(QUESTIONS).format(w=w, v=v)


async def run_block(session: AgentSession, agent: _Timed, scripted: ScriptedLLM, texts: list[str]) -> list[float]:
    """Run the turns; return the llm_node-entry -> LLM-request time of each, in ms."""
    first_entry, first_request = len(agent.entered), len(scripted.request_times)
    for text in texts:
        await session.run(user_input=text)
    entries = agent.entered[first_entry:]
    requests = scripted.request_times[first_request:]
    return [(sent - entered) * 1000 for entered, sent in zip(entries, requests, strict=True)]


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(7)
    store = await open_store(args.store)
    try:
        with user_session(f"bench-recall-{rng.random()}@example.com") as user_id:
            await seed(store, user_id, args.memories, rng)
            with_memory = TimedMemoryAgent(store)
            without = TimedPlainAgent()
            memory_llm, plain_llm = ScriptedLLM([], default_text="ok"), ScriptedLLM([], default_text="ok")
            turns: TurnHandlingOptions = {"turn_detection": None}
            async with (
                AgentSession(llm=memory_llm, vad=None, turn_handling=turns) as memory_session,
                AgentSession(llm=plain_llm, vad=None, turn_handling=turns) as plain_session,
            ):
                await memory_session.start(with_memory)
                await plain_session.start(without)
                assert await with_memory.memories.wait_loaded(30.0), "memories did not load"
                loaded = len(with_memory.memories.snapshot())
                rounds = 5
                per_round = max(1, args.turns // rounds)
                samples: dict[str, list[float]] = {"memory": [], "plain": []}
                await run_block(memory_session, with_memory, memory_llm, [question(rng) for _ in range(5)])  # warm up
                await run_block(plain_session, without, plain_llm, [question(rng) for _ in range(5)])
                for _ in range(rounds):
                    texts = [question(rng) for _ in range(per_round)]
                    samples["memory"] += await run_block(memory_session, with_memory, memory_llm, texts)
                    samples["plain"] += await run_block(plain_session, without, plain_llm, texts)
            await with_memory.aclose(10.0)
            stats = with_memory.recall_stats
            budget_ms = with_memory.recall_budget_s * 1000
    finally:
        await store.aclose()

    mem_p50, mem_p95 = percentile(samples["memory"], 50), percentile(samples["memory"], 95)
    raw_p50, raw_p95 = percentile(samples["plain"], 50), percentile(samples["plain"], 95)
    print(f"time from llm_node entry to the LLM request, {len(samples['memory'])} turns each, store {store.url}")
    print(f"caller has {loaded} memories; recall budget {budget_ms:.0f} ms; late recalls: {stats.late}")
    print()
    print("| agent | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    print(f"| MemoryAgent (recall injected) | {mem_p50:.3f} | {mem_p95:.3f} |")
    print(f"| plain Agent (no memory) | {raw_p50:.3f} | {raw_p95:.3f} |")
    print(f"| memory adds | {mem_p50 - raw_p50:.3f} | {mem_p95 - raw_p95:.3f} |")
    print()
    ratio = mem_p95 / raw_p95 if raw_p95 > 0 else float("inf")
    share = 100 * (mem_p95 - raw_p95) / budget_ms
    print(f"p95 with memory is {ratio:.1f}x the plain agent's; what memory adds at p95 is {share:.1f}% of the budget")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=1000, help="memories of the caller (default 1000)")
    parser.add_argument("--turns", type=int, default=300, help="timed turns per agent (default 300)")
    parser.add_argument("--store", default="memory://", help="store URL the memories are loaded from")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run_main(main(parse())))
