"""`python -m stores copy SRC_URL DST_URL [--user ID ...] [--verify]`: move users between backends.

The copying itself is `stores.copy`; this module opens the two stores (refusing a
destination whose schema is newer than this code), runs the users with a little
concurrency, shows progress (a bar on a terminal, plain lines otherwise), sums up and
optionally verifies. Exit status: 0 only when every user was copied (and verified),
1 when anything failed or differs, 2 for a wrong command line, 130 when interrupted
(rerun the same command to finish). docs/copy.md has the operator's guide.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from memory.settings import Settings, get_settings
from stores.base import UserStore
from stores.copy import FileDirs, UserCopy, copy_user
from stores.errors import StoreError, redact_url
from stores.ids import validate_user_id
from stores.registry import open_store


def add_parser(commands: Any) -> None:
    """Register the `copy` subcommand on `python -m stores`."""
    copy = commands.add_parser(
        "copy",
        help="copy every user (or --user ones) from one store to another, any backend to any backend",
        description="Copy profiles, memories, threads, items and attachments between stores. Idempotent and "
        "resumable: rerun the same command after an interruption; a run with nothing left to copy says so.",
    )
    copy.add_argument("source", metavar="SRC_URL", help="store to read, e.g. sqlite:///./data/memory.db")
    copy.add_argument("destination", metavar="DST_URL", help="store to write, e.g. postgresql://…:6543/postgres")
    copy.add_argument("--user", action="append", default=[], metavar="ID", help="copy only this user (repeatable)")
    copy.add_argument("--verify", action="store_true", help="compare every copied user's export on both sides")
    copy.add_argument("--src-files", metavar="DIR_URL", help="source FILES_URL (file://…) to copy attachment bytes")
    copy.add_argument("--dst-files", metavar="DIR_URL", help="destination FILES_URL (file://…) for the bytes")
    copy.add_argument("--concurrency", type=int, default=4, help="users copied at once (default 4)")


@dataclass
class Totals:
    users: int = 0
    done: int = 0
    changed: int = 0
    writes: int = 0
    items: int = 0
    extras: int = 0
    failed: list[str] = field(default_factory=list)


class Progress:
    """A one-line bar on a terminal (stderr), plain log lines otherwise (stdout)."""

    def __init__(self, total: int, stream: TextIO, tty: bool) -> None:
        self.total = total
        self.stream = stream
        self.tty = tty
        self._last_draw = 0.0

    def user_done(self, totals: Totals, result: UserCopy | None) -> None:
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw > 0.1 or totals.done == self.total:
                self._last_draw = now
                filled = int(30 * totals.done / max(1, self.total))
                bar = "#" * filled + "-" * (30 - filled)
                self.stream.write(
                    f"\r[{bar}] users {totals.done}/{self.total}  items {totals.items}  writes {totals.writes}"
                )
                self.stream.flush()
            return
        if result is not None and result.writes:
            print(
                f"copied user {result.user_id} ({totals.done}/{self.total}): {result.writes} write(s) "
                f"[{', '.join(result.details)}], {result.items} item(s)",
                file=self.stream,
                flush=True,
            )
        elif totals.done % 50 == 0 or totals.done == self.total:
            print(f"checked {totals.done}/{self.total} users", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _file_dirs(args: argparse.Namespace) -> FileDirs | None:
    if not args.src_files and not args.dst_files:
        return None
    if not (args.src_files and args.dst_files):
        raise ValueError("give both --src-files and --dst-files to copy attachment bytes (or neither)")
    dirs = []
    for url in (args.src_files, args.dst_files):
        if not url.startswith("file://") or len(url) <= len("file://"):
            raise ValueError(
                f"{url!r}: only local directories (file://./data/files, file:///srv/files) can be copied; "
                "for Supabase Storage copy the bucket with Supabase's tools"
            )
        dirs.append(Path(url[len("file://") :]))
    if not dirs[0].is_dir():
        raise ValueError(f"--src-files {args.src_files!r} is not a directory")
    return FileDirs(dirs[0], dirs[1])


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


async def _open(url: str, role: str, settings: Settings) -> UserStore:
    if role == "source" and urlsplit(url).scheme.lower() == "sqlite":
        from stores.sqlite.location import parse_url

        path = parse_url(url).path
        if not path.is_file():  # opening would create an empty store and "copy" nothing
            raise StoreError(
                f"the source SQLite file {path} does not exist; check SRC_URL (sqlite:///./data/memory.db)"
            )
    try:
        store = await open_store(url, settings=settings)
    except TimeoutError:
        raise StoreError(f"the {role} store at {redact_url(url)} did not answer in time") from None
    await _refuse_newer_schema(store, url, role)
    return store


async def _refuse_newer_schema(store: UserStore, url: str, role: str) -> None:
    """A Postgres database migrated by a newer memory-agent may hold data this code cannot copy faithfully."""
    if urlsplit(url).scheme.lower() not in {"postgresql", "postgres"}:
        return  # SQLite refuses a newer file when it opens; Redis has no schema
    from stores.postgres import PostgresStore
    from stores.postgres.migrations import VERSIONS_TABLE, migrations

    assert isinstance(store, PostgresStore)
    rows = await store._db.run(None, (f"select coalesce(max(version), '') from {VERSIONS_TABLE}", None))
    newest = rows[0][0] if rows else ""
    known = max((m.version for m in migrations()), default="")
    if newest > known:
        await store.aclose()
        raise StoreError(
            f"the {role} store at {redact_url(url)} has schema version {newest}, newer than this memory-agent "
            f"knows ({known}); upgrade memory-agent before copying"
        )


async def _copy_all(
    source: UserStore,
    destination: UserStore,
    users: list[str],
    files: FileDirs | None,
    concurrency: int,
    progress: Progress,
    totals: Totals,
    report: Callable[[str], None],
) -> None:
    queue = iter(users)

    async def worker() -> None:
        for user_id in queue:
            result: UserCopy | None = None
            try:
                result = await copy_user(source, destination, user_id, files)
            except (StoreError, ValueError, OSError) as exc:
                totals.failed.append(user_id)
                report(f"error: user {user_id}: {_one_line(exc)}")
            totals.done += 1
            if result is not None:
                totals.writes += result.writes
                totals.items += result.items
                totals.extras += result.extras
                totals.changed += bool(result.writes)
            progress.user_done(totals, result)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(users) or 1)))))


async def _verify(source: UserStore, destination: UserStore, users: list[str], report: Callable[[str], None]) -> int:
    """Compare each user's export on both sides (audit trail included); the number of users that differ."""
    differing = 0
    for user_id in users:
        wanted, got = await source.export_user(user_id), await destination.export_user(user_id)
        if wanted != got:
            differing += 1
            parts = sorted(key for key in wanted.keys() | got.keys() if wanted.get(key) != got.get(key))
            report(f"verify: user {user_id} differs on the destination in: {', '.join(parts)}")
    return differing


async def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr

    def report(line: str) -> None:
        print(line, file=err, flush=True)

    if args.source == args.destination:
        report("error: SRC_URL and DST_URL are the same store; give two different stores")
        return 2
    if any(urlsplit(url).scheme.lower() == "memory" for url in (args.source, args.destination)):
        report("error: memory:// lives only inside one process: copy from or to a SQLite, Postgres or Redis store")
        return 2
    if args.concurrency < 1:
        report("error: --concurrency must be at least 1")
        return 2
    try:
        users = [validate_user_id(user) for user in args.user]
        files = _file_dirs(args)
    except ValueError as exc:
        report(f"error: {_one_line(exc)}")
        return 2
    # never fall back to an in-process store: a copy into memory:// would "succeed" and lose everything
    settings = get_settings().model_copy(update={"store_fallback": ""})
    opened: list[UserStore] = []
    try:
        try:
            opened.append(await _open(args.source, "source", settings))
            opened.append(await _open(args.destination, "destination", settings))
            source, destination = opened
            users = users or await source.list_users()
        except (StoreError, ValueError, OSError) as exc:
            report(f"error: {_one_line(exc)}")
            return 1
        totals = Totals(users=len(users))
        tty = err.isatty()
        progress = Progress(len(users), err if tty else out, tty)
        print(
            f"copying {len(users)} user(s) from {redact_url(args.source)} to {redact_url(args.destination)}",
            file=out,
            flush=True,
        )
        await _copy_all(source, destination, users, files, args.concurrency, progress, totals, report)
        progress.finish()
        _summary(totals, out, report)
        status = 1 if totals.failed else 0
        if args.verify and not totals.failed:
            differing = await _verify(source, destination, users, report)
            if differing:
                report(f"verify: {differing} of {len(users)} user(s) differ")
                status = 1
            else:
                print(f"verified: all {len(users)} user(s) export identically on both sides", file=out)
        return status
    finally:
        for store in opened:
            await store.aclose()


def _summary(totals: Totals, out: TextIO, report: Callable[[str], None]) -> None:
    if totals.failed:
        report(
            f"error: {len(totals.failed)} of {totals.users} user(s) not copied (see above); fix the cause and rerun "
            "the same command: users already copied are skipped"
        )
    if totals.writes == 0 and not totals.failed:
        print(f"nothing to do: all {totals.users} user(s) are already identical on the destination", file=out)
    elif totals.writes:
        print(
            f"copied {totals.changed} user(s) ({totals.writes} write(s), {totals.items} item(s) checked); "
            f"{totals.users - totals.changed - len(totals.failed)} already up to date",
            file=out,
        )
    if totals.extras:
        print(
            f"note: {totals.extras} record(s) exist only on the destination and were left as they are",
            file=out,
        )
