"""When a pooled connection should forget its cached plans (`DISCARD PLANS`).

Postgres keeps a generic plan once made: our prepared statements' (the store forces
generic plans, stores/postgres/db.py) and those PL/pgSQL caches for the search index's
triggers, on every path. A plan made while a table was small stays when the table
grows, since nothing re-plans it unless ANALYZE runs, and autovacuum may be slow or off.
At 10,000 memories such plans made every remember read all of the user's postings
(10 ms instead of 2). So every so many calls or seconds a connection's call starts with
`DISCARD PLANS`, inside the call's own Query (no extra round trip): the statements stay
prepared and are planned afresh, against the tables as they are then. Through a
transaction pooler it lands on whichever server connection serves that call, which over
many calls reaches them all.
"""

from __future__ import annotations

import time
import weakref

REPLAN_AFTER_CALLS = 1000
REPLAN_AFTER_SECONDS = 30.0
DISCARD_PLANS = "discard plans"


class Replans:
    """Calls and time since each connection last discarded its plans."""

    def __init__(self, calls: int = REPLAN_AFTER_CALLS, seconds: float = REPLAN_AFTER_SECONDS) -> None:
        self.calls = calls
        self.seconds = seconds
        self._last: weakref.WeakKeyDictionary[object, tuple[float, int]] = weakref.WeakKeyDictionary()

    def due(self, conn: object) -> bool:
        """Count one call on `conn` (a pooled connection); True if it should start with DISCARD PLANS.

        A new connection has no plans yet: its clock starts with its first call.
        """
        now = time.monotonic()
        since, calls = self._last.get(conn, (now, 0))
        if calls >= self.calls or now - since >= self.seconds:
            self._last[conn] = (now, 1)
            return True
        self._last[conn] = (since, calls + 1)
        return False
