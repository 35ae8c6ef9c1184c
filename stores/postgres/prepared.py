"""Server-side prepared statements named and run in plain SQL (`PREPARE` / `EXECUTE`).

Why SQL instead of the driver's protocol-level preparing: a call (user binding plus its
statements) then goes out as ONE simple-protocol Query of `EXECUTE`s, which Postgres
runs in order as one implicit transaction, with plans cached on the connection. The
alternative, psycopg's pipeline mode, also makes one round trip but costs about one
extra round trip's worth of Python per statement (docs/performance.md).

Our statements are constant texts with psycopg placeholders (`%s`, `%(name)s`); each is
turned once into `PREPARE name AS ...` with `$n` parameters, and each call into
`EXECUTE name(literal, ...)` with the values bound client-side by psycopg's quoting.
"""

from __future__ import annotations

import functools
import hashlib
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncClientCursor, AsyncConnection

_PLACEHOLDER = re.compile(r"%(?:\((?P<name>\w+)\))?(?P<kind>.)", re.DOTALL)
# what PREPARE accepts; anything else (DO, LOCK, NOTIFY ...) is sent as it is
_PREPARABLE = ("select", "insert", "update", "delete", "with", "values")
# The store's statements are a fixed set of a few dozen texts; a caller sending ever new
# texts (ad-hoc SQL through `run_as`) gets them inline past this many, instead of filling
# the server connection with prepared statements it never frees.
MAX_PREPARED_PER_CONNECTION = 256


def preparable(query: str) -> bool:
    """Whether PREPARE accepts `query` (a plain data statement)."""
    return query.lstrip().split(None, 1)[0].lower().startswith(_PREPARABLE)


@dataclass(frozen=True)
class PreparedStatement:
    """One statement's server-side name, its PREPARE text and how to order a call's values."""

    name: str
    prepare_sql: bytes
    names: tuple[str, ...] | None  # parameter names in $n order; None for positional %s
    count: int
    execute_template: str

    def values(self, params: Sequence[Any] | Mapping[str, Any] | None) -> list[Any]:
        """The call's parameter values in $1..$n order."""
        if self.names is None:
            values = list(params or ()) if not isinstance(params, Mapping) else []
            if len(values) != self.count:
                raise TypeError(f"{self.name} takes {self.count} positional parameters, got {len(values)}")
            return values
        if not isinstance(params, Mapping):
            raise TypeError(f"{self.name} takes named parameters {', '.join(self.names)}")
        return [params[name] for name in self.names]


@functools.lru_cache(maxsize=1024)  # one entry per distinct statement text of the store
def prepared_statement(query: str) -> PreparedStatement:
    """`query`'s PREPARE text (placeholders numbered), its name and its EXECUTE template."""
    names: dict[str, int] = {}
    positional = 0

    def number(match: re.Match[str]) -> str:
        nonlocal positional
        if match["kind"] == "%" and match["name"] is None:
            return "%"
        if match["kind"] != "s":
            raise ValueError(f"unsupported placeholder {match[0]!r} in a store statement")
        if match["name"] is None:
            positional += 1
            return f"${positional}"
        return f"${names.setdefault(match['name'], len(names) + 1)}"

    body = _PLACEHOLDER.sub(number, query)
    if names and positional:
        raise ValueError("a store statement mixes %s and %(name)s placeholders")
    name = "ma_" + hashlib.blake2b(query.encode(), digest_size=10).hexdigest()
    count = len(names) or positional
    arguments = f"({', '.join(['%s'] * count)})" if count else ""
    return PreparedStatement(
        name=name,
        prepare_sql=f"prepare {name} as {body}".encode(),
        names=tuple(names) if names else None,
        count=count,
        # the template goes through psycopg's mogrify, which reads %% as a literal %
        execute_template=f"execute {name}{arguments}",
    )


class PreparedOnConnections:
    """Which statements each pooled connection has prepared (forgotten with the connection)."""

    def __init__(self) -> None:
        self._names: weakref.WeakKeyDictionary[AsyncConnection, set[str]] = weakref.WeakKeyDictionary()

    async def script(
        self,
        cursor: AsyncClientCursor[Any],
        statements: Sequence[tuple[str, Sequence[Any] | Mapping[str, Any] | None]],
    ) -> bytes:
        """One Query text of EXECUTEs for `statements`, preparing on the cursor's connection what it lacks.

        Each missing statement is prepared in a round trip of its own, once per
        connection: PREPARE outlives a failed transaction, so it is kept out of the call's
        transaction and recorded only after the server confirmed it.
        """
        conn = cursor.connection
        done = self._names.setdefault(conn, set())
        parts: list[str] = []
        for query, params in statements:
            statement = prepared_statement(query) if preparable(query) else None
            if statement is not None and statement.name not in done:
                if len(done) >= MAX_PREPARED_PER_CONNECTION:
                    statement = None
                else:
                    await conn.execute(statement.prepare_sql)
                    done.add(statement.name)
            if statement is None:
                parts.append(cursor.mogrify(query, params))
                continue
            parts.append(cursor.mogrify(statement.execute_template, statement.values(params)))
        return ";\n".join(parts).encode()
