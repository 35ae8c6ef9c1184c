"""Store command line: `python -m stores migrate|compact|sweep [URL]`, `python -m stores copy SRC DST`.

`sweep` runs one retention pass (docs/retention.md) on any store.

`migrate` applies the numbered migrations in `sql/` to a Postgres/Supabase database
and prints what it applied. `compact` rewrites a Redis server's persistence files
(AOF/RDB) so erased data leaves its disk (docs/erasure.md). `copy` moves users from
one store to another (`stores.copy_cli`, docs/copy.md). The URL defaults to
STORE_URL; the exit status is 0 on success, 1 when the store cannot be reached or the
work failed, 2 for a wrong command or URL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

from memory.settings import Settings, get_settings
from stores import copy_cli
from stores.errors import StoreError, redact_url, scrub
from stores.retention import Sweeper, SweepResult


async def _migrate(url: str, connect_timeout: float) -> list[str]:
    from stores.postgres import connect
    from stores.postgres.migrations import migrate

    conn = await connect(url, connect_timeout)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stores", description="Memory Agent store tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser(
        "migrate", help="apply the sql/ migrations to a Postgres or Supabase database (idempotent)"
    )
    migrate.add_argument("url", nargs="?", help="postgresql://user:password@host:5432/db (default: STORE_URL)")
    compact = commands.add_parser(
        "compact", help="rewrite a Redis server's AOF/RDB files so erased users' data leaves the disk"
    )
    compact.add_argument("url", nargs="?", help="redis://host:6379/0 or redis+cluster://host:port (default: STORE_URL)")
    copy_cli.add_parser(commands)
    sweep = commands.add_parser(
        "sweep",
        help="remove what MEMORY_RETENTION_DAYS / TRANSCRIPT_RETENTION_DAYS let expire, now (any store)",
    )
    sweep.add_argument("url", nargs="?", help="any store URL (default: STORE_URL)")
    return parser


async def _sweep_store(url: str, settings: Settings) -> SweepResult:
    from stores import open_store

    async with await open_store(url, settings=settings) as store:
        return await Sweeper.from_settings(store, settings).sweep()


def _sweep(url: str, settings: Settings) -> int:
    """`sweep`: one retention pass now; 2 when retention is off (nothing would ever be removed)."""
    if settings.memory_retention_days is None and settings.transcript_retention_days is None:
        print(
            "nothing to sweep: retention is off; set MEMORY_RETENTION_DAYS and/or TRANSCRIPT_RETENTION_DAYS "
            "(days, see docs/retention.md)",
            file=sys.stderr,
        )
        return 2
    try:
        result = asyncio.run(_sweep_store(url, settings))
    except (StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    done = []
    if settings.memory_retention_days is not None:
        done.append(f"forgot {result.memories} memories not updated for {settings.memory_retention_days} days")
    if settings.transcript_retention_days is not None:
        done.append(f"deleted {result.threads} voice-call threads older than {settings.transcript_retention_days} days")
    print(f"{redact_url(url)}: {'; '.join(done)}")
    return 0


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower() if "://" in url else ""


def _compact(url: str, settings: Settings) -> int:
    from redis.exceptions import RedisError

    from stores.redis.compact import compact

    if not _scheme(url).startswith("redis"):
        print(
            f"error: {redact_url(url)!r} is not a Redis URL; compaction is for Redis persistence files (SQLite "
            "erases in place, Postgres: STORE_ERASE_VACUUM=true; see docs/erasure.md)",
            file=sys.stderr,
        )
        return 2
    try:
        results = asyncio.run(compact(url, settings))
    except (StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:  # connection errors of the driver: say which server, never the password
        print(
            f"error: cannot reach Redis at {redact_url(url)} ({scrub(type(exc).__name__ + ': ' + str(exc), url)}); "
            "check that the server is running and the URL is right",
            file=sys.stderr,
        )
        return 1
    for result in results:
        print(f"{result.address}: {result.message}", file=sys.stdout if result.ok else sys.stderr)
    return 0 if all(result.ok for result in results) else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "copy":
        try:
            return asyncio.run(copy_cli.run(args))
        except KeyboardInterrupt:
            print("interrupted: rerun the same command to finish the copy (copied users are skipped)", file=sys.stderr)
            return 130
    settings = get_settings()
    url: str = args.url or settings.store_url
    if args.command == "compact":
        return _compact(url, settings)
    if args.command == "sweep":
        return _sweep(url, settings)
    scheme = _scheme(url)
    if scheme not in {"postgresql", "postgres"}:
        print(
            f"error: {redact_url(url)!r} is not a Postgres URL; migrations exist only for Postgres/Supabase "
            "(give postgresql://user:password@host:5432/db; SQLite and Redis need no migrations)",
            file=sys.stderr,
        )
        return 2
    try:
        applied = asyncio.run(_migrate(url, settings.store_connect_timeout))
    except (StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if applied:
        print(f"applied {len(applied)} migration(s) to {redact_url(url)}:")
        for label in applied:
            print(f"  {label}")
    else:
        print(f"{redact_url(url)} is up to date: no migrations to apply")
    return 0


if __name__ == "__main__":
    sys.exit(main())
