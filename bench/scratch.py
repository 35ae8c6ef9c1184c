"""Scratch stores for a benchmark: a database of its own where possible, always cleaned up.

The growth benchmark writes 10^5 users and compares against an empty store. On
Postgres and SQLite each scratch store is a fresh database / file, dropped afterwards
(deleting 10^5 users one by one would take longer than the benchmark). A Redis URL is
shared with whatever else lives there, so only the users the benchmark wrote are
deleted again (`forget_user`); an "empty" Redis store uses the neighbouring database
number on a single node and is impossible on a cluster (one keyspace).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import drop_postgres_database, open_bench_store, recreate_postgres_database, run_concurrently
from stores import UserStore


@dataclass
class Scratch:
    """An open scratch store; record every user written in `users` unless `owned`."""

    store: UserStore
    url: str
    owned: bool  # the whole database goes away afterwards
    users: list[str] = field(default_factory=list)


def scratch_url(url: str, suffix: str, *, separate: bool) -> str | None:
    """The URL of the scratch store `suffix`; None if `separate` is asked for and impossible."""
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        return parts._replace(path=f"{parts.path.rstrip('/')}_{suffix}").geturl()
    if parts.scheme == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return "sqlite:///" + str(path.with_name(f"{path.stem}-{suffix}{path.suffix or '.db'}"))
    if parts.scheme == "memory" or not separate:
        return url  # every memory:// store is a fresh one
    if "cluster" in parts.scheme:
        return None
    db = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{db - 1 if db > 0 else 1}").geturl()


def _owned(url: str) -> bool:
    scheme = urlsplit(url).scheme
    return scheme.startswith("postgres") or scheme in ("sqlite", "memory")


async def _drop(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme.startswith("postgres"):
        await drop_postgres_database(url)
    elif scheme == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            await asyncio.to_thread(leftover.unlink, missing_ok=True)


@asynccontextmanager
async def scratch_store(name: str, url: str, concurrency: int = 32) -> AsyncIterator[Scratch]:
    """Open a scratch store at `url` (from `scratch_url`), emptied first and cleaned up after."""
    if urlsplit(url).scheme.startswith("postgres"):
        await recreate_postgres_database(url)
    else:
        await _drop(url)
    try:
        scratch = Scratch(await open_bench_store(name, url), url, _owned(url))
    except BaseException:
        await _drop(url)
        raise
    try:
        yield scratch
    finally:
        try:
            if not scratch.owned:
                users = scratch.users
                await run_concurrently(len(users), concurrency, lambda index: scratch.store.forget_user(users[index]))
        finally:
            await scratch.store.aclose()
            await _drop(url)
