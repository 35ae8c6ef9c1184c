"""Run every benchmark and write their tables, with date, versions and machine size, to bench/RESULTS.md.

    .venv/bin/python -m bench.run_all                      # full runs (tens of minutes), writes bench/RESULTS.md
    .venv/bin/python -m bench.run_all --quick --output /tmp/RESULTS.md   # small sizes, to check the pipeline

Each benchmark runs as its own process (`python -m bench.<name>`) so one cannot skew
the next; its stdout is copied under a heading, with the exact command and how long it
took. A private 3-master Redis Cluster is started on loopback for the run (and removed
afterwards) unless BENCH_REDIS_CLUSTER_URL names one or `--no-cluster` is given; the
other URLs are those of bench.common (BENCH_REDIS_URL, BENCH_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from bench.common import DEFAULT_URLS
from bench.servers import RedisClusterServer
from stores.errors import redact_url

# (module, title, extra arguments for --quick)
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("store_ops", "1. Store operations vs one raw round trip", ["--repeat", "30"]),
    (
        "growth",
        "2. Growth: history, other users, searching 10,000 memories",
        ["--size", "1000", "--memories", "2000", "--repeat", "30"],
    ),
    ("agent_recall_overhead", "3. Voice path: memory recall overhead", ["--turns", "40"]),
    ("load", "4. Load: concurrent sessions, leaks and lost writes", ["--sessions", "20", "--turns", "5"]),
    (
        "call_setup",
        "5. Call set-up: participant joined to greeting, store per call vs per process",
        ["--samples", "10", "--concurrency", "1,10"],
    ),
    (
        "voice_turn",
        "6. Voice turn: stating a fact, background capture vs the remember tool",
        ["--turns", "30", "--tools-turns", "10"],
    ),
    ("recall_quality", "7. Recall quality: the ranker before vs after, and the indexed search", ["--users", "5"]),
    ("change_feed", "8. Change feed: another process's change to a live call's cache", ["--samples", "30"]),
]
DEFAULT_OUTPUT = Path(__file__).with_name("RESULTS.md")


def _redis_version(url: str) -> str:
    from redis import Redis
    from redis.cluster import RedisCluster

    if not url:
        return "not configured"
    cluster = "+cluster" in url
    plain = url.replace("+cluster", "", 1)
    try:
        client: Redis | RedisCluster = (
            RedisCluster.from_url(plain, socket_timeout=3) if cluster else Redis.from_url(plain, socket_timeout=3)
        )
        with client:
            info = client.info("server")
        if cluster:  # {node: info} or one merged dict, depending on redis-py
            values = info.values() if all(isinstance(v, dict) for v in info.values()) else [info]
            return ", ".join(sorted({str(node["redis_version"]) for node in values}))
        return str(info["redis_version"])
    except Exception as exc:  # a missing server is worth a line, not a crash
        return f"unreachable ({type(exc).__name__})"


def _postgres_version(url: str) -> str:
    import psycopg

    admin = url.split("?")[0].rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin, connect_timeout=3) as conn:
            row = conn.execute("show server_version").fetchone()
        return str(row[0]) if row else "unknown"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5)
    except OSError:
        return "unknown"
    return result.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "") or "unknown"


def header(urls: dict[str, str], quick: bool) -> str:
    """Date, revision, machine size and backend versions: what a reader needs to compare runs."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        "# Benchmark results",
        "",
        "Every figure is a ratio measured in the same run (see each section), so it holds on a noisy machine.",
        "Regenerate with `.venv/bin/python -m bench.run_all` (one command per benchmark is in each section).",
        "",
        f"- Date: {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}" + (" (QUICK run, small sizes)" if quick else ""),
        f"- Revision: {_git_revision()}",
        f"- Machine: {cpus} CPUs ({_cpu_model()}), {_memory_gib()} RAM, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- Redis {_redis_version(urls['redis'])} ({redact_url(urls['redis'])})",
        f"- Redis Cluster {_redis_version(urls['redis_cluster'])}"
        + (f" ({redact_url(urls['redis_cluster'])})" if urls["redis_cluster"] else ""),
        f"- PostgreSQL {_postgres_version(urls['postgres'])} ({redact_url(urls['postgres'])})",
    ]
    return "\n".join(lines) + "\n"


def _demote(text: str) -> str:
    """Nest each script's own headings under its section (`#` -> `###`)."""
    return "\n".join("##" + line if line.startswith("#") else line for line in text.splitlines())


def run_benchmark(module: str, title: str, args: list[str], env: dict[str, str]) -> str:
    """Run one benchmark process and return its section of RESULTS.md."""
    command = [sys.executable, "-m", f"bench.{module}", *args]
    shown = " ".join([".venv/bin/python", "-m", f"bench.{module}", *args])
    if importlib.util.find_spec(f"bench.{module}") is None:
        return f"## {title}\n\n`bench/{module}.py` does not exist yet.\n"
    print(f"running: {shown}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    section = [f"## {title}", "", f"`{shown}` ({elapsed:.0f} s)", "", _demote(result.stdout.strip())]
    if result.returncode != 0:
        section += ["", f"**exit status {result.returncode}** (see the table above: a failed check, or an error)"]
    return "\n".join(section) + "\n"


@contextlib.contextmanager
def cluster_url(disabled: bool) -> Iterator[str]:
    """BENCH_REDIS_CLUSTER_URL if set, else a private cluster for the whole run (or "" if disabled)."""
    if DEFAULT_URLS["redis_cluster"] or disabled:
        yield DEFAULT_URLS["redis_cluster"]
        return
    with RedisClusterServer() as cluster:
        yield cluster.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that everything runs")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--only", default="", help="comma-separated modules, e.g. growth,load")
    parser.add_argument("--no-cluster", action="store_true", help="do not start a private Redis Cluster")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only.split(",")]
    with cluster_url(args.no_cluster) as cluster:
        urls = {**DEFAULT_URLS, "redis_cluster": cluster}
        env = {**os.environ, "BENCH_REDIS_CLUSTER_URL": cluster}
        parts = [header(urls, args.quick)]
        for module, title, quick_args in chosen:
            parts.append(run_benchmark(module, title, quick_args if args.quick else [], env))
    args.output.write_text("\n".join(parts))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
