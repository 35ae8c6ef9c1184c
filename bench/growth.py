"""Growth: does a page cost more when the thread is long, or when the store holds other users?

    .venv/bin/python -m bench.growth [--backends memory,sqlite,redis,postgres] [--size 100000]
                                     [--memories 10000] [--repeat 200] [--concurrency 64]
                                     [--seed auto|api] [--start-cluster]

For each backend it measures, in the same run:
- `load_thread_items(20)` (newest page; desc from the middle; asc from the middle with a
  cursor) on a thread of 10^2 items vs one of `--size` items (default 10^5), alternately;
- `load_threads(20)` for one user (30 threads) beside `--size` other users' threads vs
  the same user in an empty store, alternately (on Redis Cluster, which has one
  keyspace: before vs after the others were written).
- `memories.search(5)` for a user with 10^2 memories vs one with `--memories` (default
  10^4; bench/memory_corpus.py: everyday words in hundreds of memories each, a long
  tail of rare ones), over 20 questions in turn, alternately; its target is absolute:
  p95 <= 3 ms at 10^4 memories (issue 12). The answers are checked against
  `memory.ranking.rank` over all the user's memories first.
Each ratio must stay <= 1.3: cost must not grow with history or with other users.

Rows are exactly the rows the product writes: seeded through the store's public API
(`add_thread_item`, `save_thread`) run concurrently, except on Postgres, where the
store's own INSERT statements run 1000 rows per transaction (`--seed api` turns that
off; see bench/seeding.py). The seed rate is printed. Postgres gets ANALYZE after
seeding, as autovacuum would have run in steady state.
Postgres and SQLite run in databases of their own (`memory_agent_bench_growth[_empty]`,
`data/bench-growth[_empty].db`), created empty and dropped afterwards; on Redis the
seeded users are deleted again with `forget_user`, and the empty store is the
neighbouring database number (14 for 15). Other URLs as in bench.store_ops
(redis_cluster only with BENCH_REDIS_CLUSTER_URL or `--start-cluster`).
Run it small with `--size 2000 --repeat 50`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from chatkit.types import Page, ThreadItem, ThreadMetadata

from bench import memory_corpus as corpus
from bench.common import (
    Timing,
    assistant_message,
    measure,
    measure_interleaved,
    raw_round_trip,
    run_concurrently,
    run_main,
)
from bench.memory_corpus import Fact
from bench.scratch import Scratch, scratch_store, scratch_url
from bench.seeding import Seeder, open_seeder
from bench.servers import bench_urls
from memory.ranking import rank
from stores import UserStore
from stores.errors import redact_url

SMALL = 100
SEARCH_TARGET_MS = 3.0
SEARCH_QUESTIONS = 20
PAGE = 20
READER_THREADS = 30
TARGET = 1.3


@dataclass
class Row:
    label: str
    small: Timing
    large: Timing
    target_ms: float | None = None  # an absolute p95 target for the large case instead of the ratio


@dataclass
class Report:
    url: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    round_trip: Timing | None = None
    drift: float | None = None


async def _seed_thread(store: UserStore, seeder: Seeder, user_id: str, count: int) -> tuple[str, list[str], float]:
    """A thread of `count` items; returns its id, the item ids in order and the seconds it took."""
    thread_id = f"thr_{uuid.uuid4().hex}"
    base = datetime.now() - timedelta(days=1)
    await store.threads.save_thread(ThreadMetadata(id=thread_id, created_at=base), {"user_id": user_id})
    item_ids = [""] * count

    def make(index: int) -> ThreadItem:
        item = assistant_message(thread_id, index * 10, base)
        item_ids[index] = item.id
        return item

    seconds = await seeder.items(user_id, thread_id, count, make)
    return thread_id, item_ids, seconds


async def _seed_other_users(store: UserStore, seeder: Seeder, count: int) -> tuple[list[str], float]:
    """`count` other users with one thread each; a sample of them is read back."""
    users = [str(uuid.uuid4()) for _ in range(count)]
    thread_ids = [f"thr_{uuid.uuid4().hex}" for _ in range(count)]
    base = datetime.now() - timedelta(days=2)

    def make(index: int) -> tuple[str, ThreadMetadata]:
        return users[index], ThreadMetadata(id=thread_ids[index], created_at=base + timedelta(microseconds=index))

    seconds = await seeder.threads(count, make)
    for index in random.sample(range(count), min(count, 20)):
        page = await store.threads.load_threads(PAGE, None, "desc", {"user_id": users[index]})
        if [thread.id for thread in page.data] != [thread_ids[index]]:
            raise RuntimeError("a seeded user's threads did not read back; fix the backend (or use --seed api)")
    return users, seconds


def _page_operations(
    store: UserStore, user_id: str, thread_id: str, item_ids: list[str]
) -> list[Callable[[], Awaitable[object]]]:
    context = {"user_id": user_id}
    middle = item_ids[len(item_ids) // 2]
    threads = store.threads
    return [
        lambda: threads.load_thread_items(thread_id, None, PAGE, "desc", context),
        lambda: threads.load_thread_items(thread_id, middle, PAGE, "desc", context),
        lambda: threads.load_thread_items(thread_id, middle, PAGE, "asc", context),
    ]


async def _check_pages(operations: list[Callable[[], Awaitable[object]]], item_ids: list[str]) -> None:
    """The pages measured must be the right ones, or the timing means nothing."""
    middle = len(item_ids) // 2
    expected = [
        item_ids[::-1][:PAGE],
        item_ids[max(0, middle - PAGE) : middle][::-1],
        item_ids[middle + 1 : middle + 1 + PAGE],
    ]
    for operation, ids in zip(operations, expected, strict=True):
        page = await operation()
        if not isinstance(page, Page) or [item.id for item in page.data] != ids:
            raise RuntimeError(f"a page of a {len(item_ids)}-item thread is wrong; fix the backend first")


async def _analyze(url: str) -> None:
    """Postgres: after bulk seeding, what autovacuum does in steady state (this machine runs with it off).

    VACUUM sets the visibility map, so index-only scans (search postings) skip the heap;
    ANALYZE refreshes planner statistics.
    """
    if urlsplit(url).scheme.startswith("postgres"):
        import psycopg

        address = urlsplit(url)._replace(query="").geturl()
        async with await psycopg.AsyncConnection.connect(address, autocommit=True) as conn:
            await conn.execute("vacuum (analyze)")


async def _reader_threads(stores: list[UserStore], reader: str) -> list[str]:
    """The same 30 threads for the measured user in each store; returns their ids, oldest first."""
    base = datetime.now()
    thread_ids = [f"thr_{uuid.uuid4().hex}" for _ in range(READER_THREADS)]
    for store in stores:
        for index, thread_id in enumerate(thread_ids):
            thread = ThreadMetadata(id=thread_id, created_at=base + timedelta(seconds=index))
            await store.threads.save_thread(thread, {"user_id": reader})
    return thread_ids


async def _bench_load_threads(
    name: str, url: str, main: Scratch, seeder: Seeder, size: int, repeat: int, report: Report
) -> None:
    """load_threads(20) of one user: beside `size` other users vs in an empty store."""
    reader = str(uuid.uuid4())
    context = {"user_id": reader}
    main.users.append(reader)
    empty_url = scratch_url(url, "growth_empty", separate=True)
    async with contextlib.AsyncExitStack() as stack:
        empty = await stack.enter_async_context(scratch_store(name, empty_url)) if empty_url else None
        if empty is not None:
            empty.users.append(reader)
        thread_ids = await _reader_threads([main.store] + ([empty.store] if empty else []), reader)
        await _analyze(main.url)
        if empty is not None:
            await _analyze(empty.url)

        def listing(store: UserStore) -> Callable[[], Awaitable[object]]:
            return lambda: store.threads.load_threads(PAGE, None, "desc", context)

        before = None if empty else await measure(listing(main.store), repeat)
        others, seconds = await _seed_other_users(main.store, seeder, size)
        main.users.extend(others)
        report.notes.append(f"{size} other users' threads written in {seconds:.1f} s ({size / seconds:,.0f}/s)")
        await _analyze(main.url)
        page = await main.store.threads.load_threads(PAGE, None, "desc", context)
        if [thread.id for thread in page.data] != thread_ids[::-1][:PAGE] or not page.has_more:
            raise RuntimeError("load_threads returned the wrong page; fix the backend first")
        if empty is not None:
            timings = await measure_interleaved({"none": listing(empty.store), "others": listing(main.store)}, repeat)
            before, after = timings["none"], timings["others"]
            report.notes.append("load_threads: same user in an empty store vs beside the others, alternately")
        else:
            assert before is not None
            after = await measure(listing(main.store), repeat)
            report.notes.append("load_threads: before vs after the others were written (no second keyspace)")
    report.rows.append(Row(f"load_threads({PAGE}), {size} other users vs none", before, after))


async def _bench_items(main: Scratch, seeder: Seeder, size: int, repeat: int, report: Report) -> None:
    """load_thread_items(20) pages of a 10^2-item vs a `size`-item thread, measured alternately."""
    owner = str(uuid.uuid4())
    main.users.append(owner)
    small_thread, small_ids, _ = await _seed_thread(main.store, seeder, owner, SMALL)
    large_thread, large_ids, seconds = await _seed_thread(main.store, seeder, owner, size)
    report.notes.append(f"{size} items written in {seconds:.1f} s ({size / seconds:,.0f}/s)")
    await _analyze(main.url)
    small_ops = _page_operations(main.store, owner, small_thread, small_ids)
    large_ops = _page_operations(main.store, owner, large_thread, large_ids)
    await _check_pages(small_ops, small_ids)
    await _check_pages(large_ops, large_ids)
    labels = ["newest page", "desc from the middle", "asc from the middle"]
    for label, small_op, large_op in zip(labels, small_ops, large_ops, strict=True):
        timings = await measure_interleaved({"small": small_op, "large": large_op}, repeat)
        report.rows.append(
            Row(f"load_thread_items({PAGE}) {label}, {SMALL} vs {size} items", timings["small"], timings["large"])
        )


async def _seed_memories(store: UserStore, user_id: str, facts: list[Fact], concurrency: int) -> float:
    """The facts as memories of one user, through `memories.remember` (so the search index is the store's own)."""

    async def put(index: int) -> None:
        fact = facts[index]
        await store.memories.remember(user_id, fact.category, fact.key, fact.value, source="voice")

    return await run_concurrently(len(facts), concurrency, put)


async def _bench_search(main: Scratch, memories: int, repeat: int, concurrency: int, report: Report) -> None:
    """memories.search(5) of a user with 10^2 memories vs one with `memories`, measured alternately."""
    small_user, large_user = str(uuid.uuid4()), str(uuid.uuid4())
    main.users += [small_user, large_user]
    facts = corpus.memories(memories)
    await _seed_memories(main.store, small_user, corpus.memories(SMALL, seed=5), concurrency)
    seconds = await _seed_memories(main.store, large_user, facts, concurrency)
    report.notes.append(f"{memories} memories of one user written in {seconds:.1f} s ({memories / seconds:,.0f}/s)")
    await _analyze(main.url)
    questions = corpus.queries(facts, SEARCH_QUESTIONS)
    for user_id in (small_user, large_user):
        everything = await main.store.memories.list(user_id)
        for question in questions:
            if await main.store.memories.search(user_id, question) != rank(everything, question, 5):
                raise RuntimeError(f"memories.search disagrees with the ranker for {question!r}; fix the backend")
    turns = itertools.count()

    def search(user_id: str) -> Callable[[], Awaitable[object]]:
        return lambda: main.store.memories.search(user_id, questions[next(turns) % len(questions)])

    timings = await measure_interleaved({"small": search(small_user), "large": search(large_user)}, repeat)
    label = f"memories.search(5), {SMALL} vs {memories} memories of the user"
    report.rows.append(Row(label, timings["small"], timings["large"], SEARCH_TARGET_MS))


async def bench_backend(
    name: str, url: str, size: int, repeat: int, concurrency: int, seed_mode: str, memories: int
) -> Report:
    main_url = scratch_url(url, "growth", separate=False)
    assert main_url is not None
    report = Report(url=main_url)
    async with scratch_store(name, main_url, concurrency) as main:
        seeder = await open_seeder(main.store, main_url, concurrency, seed_mode)
        try:
            report.notes.append(f"seeded through {seeder.path}")
            report.round_trip = await raw_round_trip(main_url, repeat)
            await _bench_load_threads(name, url, main, seeder, size, repeat, report)
            await _bench_items(main, seeder, size, repeat, report)
            if memories:
                # one writer: concurrent writes of one user's memories can deadlock in the Postgres
                # audit-trail trim (memory_changes) once the user has more than 1000 changes
                await _bench_search(main, memories, repeat, 1, report)
            if report.round_trip is not None:
                again = await raw_round_trip(main_url, repeat)
                assert again is not None
                report.drift = again.median / report.round_trip.median
        finally:
            await seeder.aclose()
    return report


def _print_table(name: str, report: Report) -> None:
    base = report.round_trip
    base_text = f"raw round trip median {base.median:.3f} ms" if base else "no driver round trip"
    print(f"\n## {name} ({redact_url(report.url)}; {base_text})")
    for note in report.notes:
        print(f"- {note}")
    if report.drift is not None:
        print(f"- raw round trip at the end / at the start: {report.drift:.2f}x (machine drift during the run)")
    print("\n| operation | small median ms | large median ms | median ratio | p95 ratio | target |")
    print("|---|---:|---:|---:|---:|---|")
    for row in report.rows:
        ratio = row.large.median / row.small.median
        if row.target_ms is None:
            target = f"<= {TARGET}x {'ok' if ratio <= TARGET else 'OVER'}"
        else:
            verdict = "ok" if row.large.p95 <= row.target_ms else "OVER"
            target = f"large p95 {row.large.p95:.3f} ms <= {row.target_ms:g} ms {verdict}"
        print(
            f"| {row.label} | {row.small.median:.3f} | {row.large.median:.3f} | {ratio:.2f}x "
            f"| {row.large.p95 / row.small.p95:.2f}x | {target} |"
        )


async def run(args: argparse.Namespace, urls: dict[str, str]) -> int:
    print(f"# Growth, {datetime.now():%Y-%m-%d %H:%M}, {args.size} rows, {args.repeat} runs each")
    for name in args.backends.split(","):
        url = urls.get(name, "")
        if not url:
            print(f"\n## {name}: skipped (set BENCH_REDIS_CLUSTER_URL or pass --start-cluster to include it)")
            continue
        try:
            report = await bench_backend(name, url, args.size, args.repeat, args.concurrency, args.seed, args.memories)
        except Exception as exc:  # report and go on with the other backends
            print(f"\n## {name}: skipped, cannot use {redact_url(url)}: {type(exc).__name__}: {exc}")
            continue
        _print_table(name, report)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="memory,sqlite,redis,postgres")
    parser.add_argument("--size", type=int, default=100_000, help="items in the long thread and other users")
    parser.add_argument("--memories", type=int, default=10_000, help="memories of the searched user (0: skip)")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent writers while seeding")
    parser.add_argument(
        "--seed", choices=("auto", "api"), default="auto", help="api: seed Postgres through the public API too"
    )
    parser.add_argument("--start-cluster", action="store_true", help="run redis_cluster on a private cluster")
    args = parser.parse_args()
    if args.size <= SMALL:
        parser.error(f"--size must be larger than {SMALL}")
    with bench_urls(args.start_cluster, args.backends.split(",")) as urls:
        return run_main(run(args, urls))


if __name__ == "__main__":
    sys.exit(main())
