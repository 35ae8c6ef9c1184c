"""When a Postgres connection's cached plans are discarded: after so many calls or seconds, per connection."""

from __future__ import annotations

import pytest

from stores.postgres import replan
from stores.postgres.replan import Replans


class _Connection:
    """Stands in for a pooled connection: Replans only keys a weak dictionary by it."""


def _due_pattern(replans: Replans, conn: object, calls: int) -> list[bool]:
    return [replans.due(conn) for _ in range(calls)]


def test_every_so_many_calls_one_starts_by_discarding_plans() -> None:
    replans, conn = Replans(calls=3, seconds=10**6), _Connection()
    assert _due_pattern(replans, conn, 10) == [False, False, False, True, False, False, True, False, False, True]


def test_connections_count_apart() -> None:
    replans, first, second = Replans(calls=2, seconds=10**6), _Connection(), _Connection()
    assert _due_pattern(replans, first, 2) == [False, False]
    assert replans.due(second) is False
    assert replans.due(first) is True


def test_an_idle_connection_discards_its_plans_once_time_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(replan.time, "monotonic", lambda: now[0])
    replans, conn = Replans(calls=1000, seconds=30.0), _Connection()
    assert replans.due(conn) is False  # a new connection has no plans to discard
    now[0] += 29.0
    assert replans.due(conn) is False
    now[0] += 1.0
    assert replans.due(conn) is True
    assert replans.due(conn) is False
