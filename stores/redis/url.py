"""Parse Redis store URLs into connection settings, with errors that never show the password.

Forms: `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS) and
`redis+cluster://[[user]:password@]host:port[,host:port…]` / `rediss+cluster://…`.
Query options: `thread_ttl=SECONDS` (0 = off), `max_connections=N` (pool size per
node, default 50; more concurrent calls wait for a free connection), and for TLS `ssl_cert_reqs=none|optional|required`
and `ssl_ca_certs=/path/ca.pem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from stores.errors import PERCENT_ENCODE_HINT, has_unencoded_credentials, redact_url

DEFAULT_PORT = 6379
_SCHEMES = {
    "redis": (False, False),
    "rediss": (True, False),
    "redis+cluster": (False, True),
    "rediss+cluster": (True, True),
}
_QUERY_OPTIONS = ("thread_ttl", "max_connections", "ssl_cert_reqs", "ssl_ca_certs")
DEFAULT_MAX_CONNECTIONS = 50
_CERT_REQS = ("none", "optional", "required")


@dataclass(frozen=True)
class RedisUrl:
    """What a Redis store URL says; `redacted` is safe to log."""

    redacted: str
    tls: bool
    cluster: bool
    hosts: list[tuple[str, int]]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    thread_ttl: int | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None


def _bad(url: str, problem: str) -> ValueError:
    return ValueError(
        f"invalid Redis store URL {redact_url(url)!r}: {problem}. Use redis://[:password@]host:port/db, "
        f"rediss://… for TLS, or redis+cluster://host:port[,host:port…] for Redis Cluster; {PERCENT_ENCODE_HINT}"
    )


def _parse_host(url: str, text: str) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise _bad(url, f"missing host in {text!r}")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _bad(url, f"port {port_text!r} is not a number between 1 and 65535")
    return host, int(port_text)


def _parse_ttl(url: str, text: str | None, default: int | None) -> int | None:
    if text is None:
        return default
    if not text.isdigit():
        raise _bad(url, f"thread_ttl={text!r} must be a whole number of seconds (0 turns the TTL off)")
    return int(text) or None


def parse_redis_url(url: str, default_thread_ttl: int | None = None) -> RedisUrl:
    """Split a store URL into hosts, credentials, db and options; ValueError explains what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise _bad(url, f"scheme {scheme!r} is not a Redis scheme")
    tls, cluster = _SCHEMES[scheme]
    if has_unencoded_credentials(url):
        raise _bad(url, "the part before the host holds an unencoded /, ? or #")
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if userinfo:
        user_text, has_password, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if has_password else None
    if not hostinfo:
        raise _bad(url, "missing host")
    hosts = [_parse_host(url, text) for text in hostinfo.split(",")]
    if len(hosts) > 1 and not cluster:
        raise _bad(url, "several hosts are only allowed for Redis Cluster (redis+cluster://)")
    db_text = parts.path.strip("/")
    if db_text and not db_text.isdigit():
        raise _bad(url, f"database {db_text!r} must be a number")
    db = int(db_text or 0)
    if cluster and db != 0:
        raise _bad(url, "Redis Cluster only has database 0")
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _QUERY_OPTIONS:
            raise _bad(url, f"unknown option {name!r} (known: {', '.join(_QUERY_OPTIONS)})")
        options[name] = value
    cert_reqs = options.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _CERT_REQS:
        raise _bad(url, f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    max_text = options.get("max_connections", str(DEFAULT_MAX_CONNECTIONS))
    if not max_text.isdigit() or not 1 <= int(max_text) <= 10000:
        raise _bad(url, f"max_connections={max_text!r} must be a whole number from 1 to 10000")
    return RedisUrl(
        redacted=redact_url(url),
        tls=tls,
        cluster=cluster,
        hosts=hosts,
        username=username,
        password=password,
        db=db,
        thread_ttl=_parse_ttl(url, options.get("thread_ttl"), default_thread_ttl),
        max_connections=int(max_text),
        ssl_cert_reqs=cert_reqs,
        ssl_ca_certs=options.get("ssl_ca_certs") or None,
    )
