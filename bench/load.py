"""Load: many concurrent voice sessions doing recall + transcript writes, with a cross-user leak check.

    .venv/bin/python -m bench.load [--backends redis,redis_cluster,postgres] [--sessions 200]
                                   [--turns 20] [--think-ms 0] [--start-cluster]

Each simulated session is one caller (a unique user with ~20 memories, one of them a
unique canary) running the agent's own session code: `agent.cache.SessionMemories`
loads the caller's memories once, and every turn does
- one store recall (`store.memories.search`) and the agent's cache-based recall
  (`memories_for_turn` on the session cache, as `MemoryAgent` injects it), and
- two transcript writes (user + assistant message) through `agent.transcript.VoiceTranscript`,
  waited for with `flush()` so the turn's store work is complete when it is timed.
"Store part of a turn" = search + both writes stored. Turns run back to back unless
`--think-ms` adds a pause. Afterwards every session's thread is read back: each
written message must be there exactly once and in order, and no recall result, cache
block, thread item or probe of another session's thread may show another user's
canary (leaks must be 0). p99 is also given as a ratio to one raw driver round trip
measured in the same run. Backends: memory, sqlite, redis, redis_cluster, postgres
(same URLs as bench.store_ops; redis_cluster needs BENCH_REDIS_CLUSTER_URL or
`--start-cluster`, which starts a private 3-master cluster on loopback and removes it).
Run it small with `--sessions 20 --turns 5`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from chatkit.store import NotFoundError
from chatkit.types import AssistantMessageItem, ThreadItem, UserMessageItem

from agent.cache import SessionMemories
from agent.transcript import VoiceTranscript
from bench.common import Timing, open_bench_store, raw_round_trip, run_concurrently, run_main
from bench.servers import bench_urls
from memory.models import Memory
from memory.recall import background_block, memories_for_turn
from stores import UserStore
from stores.errors import redact_url

CANARY_RE = re.compile(r"canary[0-9a-f]{16}")
MARKER_RE = re.compile(r"\[s(\d+)t(\d+)([ua])\]")
MEMORIES_PER_USER = 20
LOAD_BUDGET_S = 10.0
FLUSH_TIMEOUT_S = 30.0
QUERIES = ("what is my secret word", "what do I like to drink", "remind me about topic 3", "what about music")


@dataclass
class Session:
    index: int
    user_id: str
    canary: str
    thread_id: str = ""


@dataclass
class Result:
    """Everything one backend run measured and found."""

    sessions: int
    turns: int
    wall_s: float = 0.0
    store_part: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    cache_recall: list[float] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    recall_misses: int = 0
    load_timeouts: int = 0  # session caches not loaded within LOAD_BUDGET_S
    slow_flushes: int = 0  # turns whose two writes were not stored within FLUSH_TIMEOUT_S
    lost: int = 0
    duplicated: int = 0
    misordered: int = 0
    unstored: int = 0  # writes VoiceTranscript.aclose reported as not stored
    round_trip: Timing | None = None


def _foreign_canaries(text: str, own: str) -> list[str]:
    return [found for found in CANARY_RE.findall(text) if found != own]


def _check_memories(session: Session, memories: list[Memory], where: str, result: Result) -> None:
    for memory in memories:
        if memory.user_id != session.user_id:
            result.leaks.append(f"{where} of session {session.index} returned a memory of another user")
        for canary in _foreign_canaries(memory.value, session.canary):
            result.leaks.append(f"{where} of session {session.index} returned another user's canary {canary}")


async def _seed_users(store: UserStore, sessions: list[Session], concurrency: int) -> None:
    """Profile, ~20 ordinary memories and one canary per user, through the public API."""
    per_user = MEMORIES_PER_USER + 2

    async def write(index: int) -> None:
        session, step = sessions[index // per_user], index % per_user
        if step == 0:
            await store.profiles.ensure(session.user_id)
        elif step == 1:
            await store.memories.remember(session.user_id, "fact", "secret word", f"my secret word is {session.canary}")
        else:
            topic = step - 2
            await store.memories.remember(
                session.user_id, "preference", f"topic {topic}", f"likes topic {topic}, green tea and jazz music"
            )

    await run_concurrently(len(sessions) * per_user, concurrency, write)


async def _run_session(store: UserStore, session: Session, turns: int, think_s: float, result: Result) -> None:
    """One call: load the cache, then `turns` turns of recall + two transcript writes."""
    cache = SessionMemories(store, session.user_id)
    cache.start_loading()
    transcript = VoiceTranscript(store, session.user_id, f"bench-room-{session.index}", f"bench-job-{session.index}")
    session.thread_id = transcript.thread_id
    try:
        if not await cache.wait_loaded(LOAD_BUDGET_S):
            result.load_timeouts += 1
        for turn in range(turns):
            query = QUERIES[turn % len(QUERIES)]
            started = time.perf_counter()
            found = await store.memories.search(session.user_id, query)
            recalled = time.perf_counter()
            chosen = memories_for_turn(cache.snapshot(), query)
            block = background_block(chosen)
            cached = time.perf_counter()
            transcript.add("user", f"[s{session.index}t{turn}u] {query}? my word is {session.canary}")
            transcript.add(
                "assistant",
                f"[s{session.index}t{turn}a] here is what I remember: {found[0].value if found else 'nothing'}",
            )
            if not await transcript.flush(timeout=FLUSH_TIMEOUT_S):
                result.slow_flushes += 1
            stored = time.perf_counter()

            result.recall.append((recalled - started) * 1000)
            result.cache_recall.append((cached - recalled) * 1000)
            result.writes.append((stored - cached) * 1000)
            result.store_part.append(((recalled - started) + (stored - cached)) * 1000)
            _check_memories(session, found, "store recall", result)
            _check_memories(session, chosen, "cache recall", result)
            for canary in _foreign_canaries(block, session.canary):
                result.leaks.append(f"cache recall of session {session.index} showed another user's canary {canary}")
            if query == QUERIES[0] and session.canary not in (found[0].value if found else ""):
                result.recall_misses += 1
            if think_s:
                await asyncio.sleep(think_s)
    finally:
        result.unstored += await transcript.aclose(timeout=60)
        await cache.aclose(timeout=60)


def _item_text(item: ThreadItem) -> str:
    if isinstance(item, UserMessageItem | AssistantMessageItem):
        return " ".join(getattr(part, "text", "") for part in item.content)
    return ""


async def _verify_session(store: UserStore, session: Session, other: Session, turns: int, result: Result) -> None:
    """Read back the session's thread (exactly once, in order, only own canary) and probe a neighbour's."""
    context = {"user_id": session.user_id}
    markers: list[tuple[int, int, str]] = []
    after: str | None = None
    while True:
        page = await store.threads.load_thread_items(session.thread_id, after, 100, "asc", context)
        for item in page.data:
            text = _item_text(item)
            for canary in _foreign_canaries(text, session.canary):
                result.leaks.append(f"thread of session {session.index} holds another user's canary {canary}")
            markers.extend((int(s), int(t), role) for s, t, role in MARKER_RE.findall(text))
        if not page.has_more:
            break
        after = page.after
    expected = [(session.index, turn, role) for turn in range(turns) for role in ("u", "a")]
    counts = collections.Counter(markers)
    result.lost += sum(1 for marker in expected if counts[marker] == 0)
    result.duplicated += sum(count - 1 for count in counts.values() if count > 1)
    result.leaks.extend(
        f"thread of session {session.index} holds a message of session {s}" for s, _, _ in markers if s != session.index
    )
    if not counts.keys() - set(expected) and all(counts[m] == 1 for m in expected) and markers != expected:
        result.misordered += 1

    threads = await store.threads.load_threads(100, None, "desc", context)
    if [thread.id for thread in threads.data] != [session.thread_id]:
        result.leaks.append(f"session {session.index} sees threads other than its own voice thread")
    try:
        await store.threads.load_thread(other.thread_id, context)
        result.leaks.append(f"session {session.index} could load session {other.index}'s thread")
    except NotFoundError:
        pass
    probe = await store.threads.load_thread_items(other.thread_id, None, 20, "desc", context)
    if probe.data:
        result.leaks.append(f"session {session.index} could read session {other.index}'s messages")
    found = await store.memories.search(session.user_id, f"secret word {other.canary}", limit=20)
    _check_memories(session, found, "probe recall", result)


async def bench_backend(name: str, url: str, sessions_count: int, turns: int, think_ms: float) -> Result:
    result = Result(sessions_count, turns)
    store = await open_bench_store(name, url)
    sessions = [Session(i, str(uuid.uuid4()), f"canary{secrets.token_hex(8)}") for i in range(sessions_count)]
    try:
        result.round_trip = await raw_round_trip(url, 200)
        await _seed_users(store, sessions, concurrency=64)
        started = time.perf_counter()
        # return_exceptions: every session has finished (and flushed) before cleanup starts, even on failure
        outcomes = await asyncio.gather(
            *(_run_session(store, s, turns, think_ms / 1000, result) for s in sessions), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        result.wall_s = time.perf_counter() - started
        for index, session in enumerate(sessions):
            await _verify_session(store, session, sessions[(index + 1) % len(sessions)], turns, result)
    finally:
        try:
            await run_concurrently(len(sessions), 32, lambda index: store.forget_user(sessions[index].user_id))
        finally:
            await store.aclose()
    return result


def _print_results(rows: list[tuple[str, str, Result]]) -> None:
    print(
        "\n| backend | sessions x turns | turns/s | store part p50 ms | p99 ms | p99 / round trip "
        "| recall p99 ms | 2 writes p99 ms | cache recall p99 ms | leaks | lost | duplicated | misordered |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _, r in rows:
        part = Timing(r.store_part)
        ratio = f"{part.p99 / r.round_trip.median:.1f}x" if r.round_trip else "-"
        print(
            f"| {name} | {r.sessions} x {r.turns} | {r.sessions * r.turns / r.wall_s:,.0f} | {part.median:.2f} "
            f"| {part.p99:.2f} | {ratio} | {Timing(r.recall).p99:.2f} | {Timing(r.writes).p99:.2f} "
            f"| {Timing(r.cache_recall).p99:.3f} | {len(r.leaks)} | {r.lost + r.unstored} | {r.duplicated} "
            f"| {r.misordered} |"
        )
    for name, url, r in rows:
        base = f"raw round trip median {r.round_trip.median:.3f} ms" if r.round_trip else "no driver round trip"
        print(f"\n- {name}: {redact_url(url)}; {base}; wall time {r.wall_s:.1f} s")
        if r.load_timeouts:
            print(f"  - {r.load_timeouts} sessions did not get their memories within {LOAD_BUDGET_S:g} s")
        if r.slow_flushes:
            print(f"  - {r.slow_flushes} turns' writes were not stored within {FLUSH_TIMEOUT_S:g} s")
        if r.recall_misses:
            print(f"  - {r.recall_misses} recalls of the secret word did not return the caller's own canary first")
        for leak in r.leaks[:10]:
            print(f"  - LEAK: {leak}")


async def run(args: argparse.Namespace, urls: dict[str, str]) -> int:
    print(
        f"# Load, {datetime.now():%Y-%m-%d %H:%M}: {args.sessions} concurrent sessions x {args.turns} turns "
        f"(recall + 2 transcript writes per turn, think time {args.think_ms:g} ms)"
    )
    rows: list[tuple[str, str, Result]] = []
    failed = False
    for name in args.backends.split(","):
        url = urls.get(name, "")
        if not url:
            print(f"\n- {name}: skipped (set BENCH_REDIS_CLUSTER_URL or pass --start-cluster to include it)")
            continue
        try:
            result = await bench_backend(name, url, args.sessions, args.turns, args.think_ms)
        except Exception as exc:  # report and go on with the other backends
            print(f"\n- {name}: skipped, cannot use {redact_url(url)}: {type(exc).__name__}: {exc}")
            continue
        rows.append((name, url, result))
        failed = failed or bool(result.leaks or result.lost or result.unstored or result.duplicated)
    if rows:
        _print_results(rows)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="memory,sqlite,redis,redis_cluster,postgres")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause between a session's turns")
    parser.add_argument("--start-cluster", action="store_true", help="run redis_cluster on a private cluster")
    args = parser.parse_args()
    if args.sessions < 2 or args.turns < 1:
        parser.error("--sessions must be at least 2 and --turns at least 1")
    with bench_urls(args.start_cluster, args.backends.split(",")) as urls:
        return run_main(run(args, urls))


if __name__ == "__main__":
    sys.exit(main())
