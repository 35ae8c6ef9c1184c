"""Turn a store URL into psycopg connection settings.

Our own query parameters (`prepare`, `pool_max`) are removed before the URL reaches
libpq, which would reject them; everything else (sslmode, options, ...) passes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stores.errors import PERCENT_ENCODE_HINT, has_unencoded_credentials, redact_url

TRANSACTION_POOLER_PORT = 6543  # Supabase's (Supavisor) transaction pooler
POOLER_PORTS = {TRANSACTION_POOLER_PORT, 6432}  # and PgBouncer's default port
DEFAULT_POOL_MAX = 10
APPLICATION_NAME = "memory-agent-store"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class PostgresConfig:
    """What `open` needs: the libpq URL, whether to prepare statements, the pool size."""

    conninfo: str
    redacted: str
    prepare: bool
    pool_max: int


def parse_url(url: str) -> PostgresConfig:
    """Split our parameters off a `postgresql://` URL; ValueError says what is wrong.

    Prepared statements are off with `?prepare=false` or on ports 6543 (Supabase's
    transaction pooler) and 6432 (PgBouncer), because a transaction pooler hands each
    transaction to any server connection, where a statement prepared on another one
    does not exist. (`Database.run` also turns them off when a call finds one missing.)
    """
    redacted = redact_url(url)
    if has_unencoded_credentials(url):
        raise ValueError(
            f"invalid Postgres URL {redacted}: the part before the host holds an unencoded /, ? or #; "
            f"{PERCENT_ENCODE_HINT}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # the driver's text may quote part of the password: never show it
        raise ValueError(
            f"invalid Postgres URL {redacted}: cannot read its host and port; use "
            f"postgresql://user:password@host:5432/dbname, and {PERCENT_ENCODE_HINT}"
        ) from None
    if parts.scheme.lower() not in {"postgresql", "postgres"}:
        raise ValueError(f"not a Postgres URL: {redacted}; use postgresql://user:password@host:5432/dbname")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"the Postgres URL {redacted} names no host; use postgresql://user:password@host:5432/dbname")
    params: list[tuple[str, str]] = []
    prepare: bool | None = None
    pool_max = DEFAULT_POOL_MAX
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        lowered = key.lower()
        if lowered == "prepare":
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(f"prepare={value!r} in {redacted}: use prepare=false or prepare=true")
            prepare = value.lower() in _TRUE
        elif lowered == "pool_max":
            if not value.isdigit() or not 1 <= int(value) <= 1000:
                raise ValueError(f"pool_max={value!r} in {redacted}: use a whole number from 1 to 1000")
            pool_max = int(value)
        else:
            params.append((key, value))
    if not any(key.lower() == "application_name" for key, _ in params):
        params.append(("application_name", APPLICATION_NAME))
    if prepare is None:
        prepare = port not in POOLER_PORTS
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(params), parts.fragment))
    return PostgresConfig(conninfo=conninfo, redacted=redacted, prepare=prepare, pool_max=pool_max)
