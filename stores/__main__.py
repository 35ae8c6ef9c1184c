"""Store command line: `python -m stores migrate [URL]`.

Applies the numbered migrations in `sql/` to a Postgres/Supabase database and prints
what it applied. The URL defaults to STORE_URL; the exit status is 0 on success,
1 when the database cannot be reached or a migration fails, 2 for a wrong command.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

from memory.settings import get_settings
from stores.errors import StoreError, redact_url


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    url: str = args.url or settings.store_url
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
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
