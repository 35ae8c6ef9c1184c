"""Memories and profiles in Postgres: each write is one statement (an upsert), so it is race-free."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from memory.models import MAX_MEMORY_CHANGES, Memory, MemoryChange, Profile, Provenance
from memory.ranking import (
    MAX_PACKED_TERMS,
    Candidate,
    epoch_us,
    rank_candidates,
    rank_postings,
    term_weights,
    unpack_fields,
)
from stores.base import ChangeNote, MemoryStore, ProfileStore
from stores.postgres.db import Database, lock_user
from stores.postgres.search_index import CANDIDATES, POSTINGS, read_postings, reindex_statements

_MEMORY_COLUMNS = "id, user_id, category, key, value, source, created_at, updated_at, thread_id, item_id"
_CHANGE_COLUMNS = "id, user_id, at, op, category, key, memory_id, source, thread_id, item_id"

# The upsert and its audit entry in one statement; `xmax = 0` only for a freshly inserted row.
_UPSERT_MEMORY = f"""
with up as (
  insert into public.memories as m
    (user_id, category, key, id, value, source, thread_id, item_id, created_at, updated_at)
  values (%(user)s, %(category)s, %(key)s, %(id)s, %(value)s, %(source)s, %(thread)s, %(item)s, %(now)s, %(now)s)
  on conflict (user_id, category, key) do update
    set value = excluded.value, source = excluded.source, thread_id = excluded.thread_id,
        item_id = excluded.item_id, updated_at = excluded.updated_at
  returning {_MEMORY_COLUMNS}, (xmax = 0) as inserted
), change as (
  insert into public.memory_changes ({_CHANGE_COLUMNS})
  select %(change)s, user_id, %(at)s, case when inserted then 'remember' else 'update' end, category, key, id,
         %(change_source)s, %(thread)s, %(item)s
  from up
)
select {_MEMORY_COLUMNS} from up
"""
# Keep the newest `keep` entries of the user (the index on (user_id, seq) makes the offset cheap).
_TRIM = """
delete from public.memory_changes where user_id = %(user)s and seq <= (
  select seq from public.memory_changes where user_id = %(user)s order by seq desc offset {keep} limit 1
)
"""
# before a write adding at most one entry: keep MAX-1, so the new one makes MAX
_TRIM_BEFORE_ONE = _TRIM.format(keep=MAX_MEMORY_CHANGES - 1)
_DELETE_MEMORY = f"""
with gone as (
  delete from public.memories
  where user_id = %(user)s and category = %(category)s and key = %(key)s
    and (%(before)s::timestamptz is null or updated_at < %(before)s::timestamptz)
  returning id
), change as (
  insert into public.memory_changes ({_CHANGE_COLUMNS})
  select %(change)s, %(user)s, %(at)s, 'forget', %(category)s, %(key)s, id, %(change_source)s, %(thread)s, %(item)s
  from gone
)
select id from gone
"""
# one entry per forgotten memory, ids `<change>.<n>`; then trim, and count this write's entries
_DELETE_FROM_THREAD = f"""
with gone as (
  delete from public.memories where user_id = %(user)s and thread_id = %(thread)s
  returning id, category, key
)
insert into public.memory_changes ({_CHANGE_COLUMNS})
select %(change)s || '.' || row_number() over (order by category, key), %(user)s, %(at)s, 'forget',
       category, key, id, %(change_source)s, %(thread)s, %(item)s
from gone
"""
_COUNT_FORGOTTEN = f"""
with trimmed as ({_TRIM.format(keep=MAX_MEMORY_CHANGES).strip()} returning 1)
select count(*) from public.memory_changes
where user_id = %(user)s and left(id, length(%(change)s) + 1) = %(change)s || '.'
"""
# `with ordinality` + `order by`: `seq` is assigned in the order of the source's trail
_REPLACE_HISTORY = f"""
insert into public.memory_changes ({_CHANGE_COLUMNS})
select c.id, %(user)s, c.at, c.op, c.category, c.key, c.memory_id, c.source, c.thread_id, c.item_id
from unnest(%(id)s::text[], %(at)s::timestamptz[], %(op)s::text[], %(category)s::text[], %(key)s::text[],
            %(memory_id)s::text[], %(source)s::text[], %(thread_id)s::text[], %(item_id)s::text[])
     with ordinality as c (id, at, op, category, key, memory_id, source, thread_id, item_id, n)
order by c.n
"""
_HISTORY = f"select {_CHANGE_COLUMNS} from public.memory_changes where user_id = %s order by seq desc limit %s"

# Race-safe in one statement: concurrent calls serialise on the primary key. `visits`
# counts ensures; a profile made by the optional sign-up trigger has 0, so the agent's
# first ensure still reports is_first_login (`p.*` in SET is the row before the update).
_ENSURE_PROFILE = """
insert into public.profiles as p
  (id, identity, email, is_first_login, visits, created_at, last_seen_at, memory_enabled)
values (%(id)s, %(identity)s, %(email)s, true, 1, %(now)s, %(now)s, %(enabled)s)
on conflict (id) do update set
  identity = coalesce(p.identity, excluded.identity),
  email = coalesce(p.email, excluded.email),
  is_first_login = (p.visits = 0),
  visits = p.visits + 1,
  last_seen_at = excluded.last_seen_at
returning id, identity, email, is_first_login, created_at, last_seen_at, memory_enabled
"""
_PROFILE_COLUMNS = "id, identity, email, is_first_login, created_at, last_seen_at, memory_enabled"
# created here (e.g. by PATCH /me before any visit) it counts as visited: a later ensure is not a first login
_SET_MEMORY_ENABLED = f"""
insert into public.profiles as p (id, is_first_login, visits, created_at, last_seen_at, memory_enabled)
values (%(id)s, false, 1, %(now)s, %(now)s, %(enabled)s)
on conflict (id) do update set memory_enabled = excluded.memory_enabled
returning {_PROFILE_COLUMNS}
"""
_GET_PROFILE = f"select {_PROFILE_COLUMNS} from public.profiles where id = %s"
_GET_MEMORY = f"select {_MEMORY_COLUMNS} from public.memories where user_id = %s and category = %s and key = %s"
_GET_MEMORIES = (
    f"select {_MEMORY_COLUMNS} from public.memories "
    "where user_id = %s and (category, key) in (select * from unnest(%s::text[], %s::text[]))"
)
_CANDIDATES = CANDIDATES.format(columns=", ".join(f"m.{column}" for column in _MEMORY_COLUMNS.split(", ")))
_LIST_MEMORIES = f"select {_MEMORY_COLUMNS} from public.memories where user_id = %s"
_LIST_CATEGORY = f"select {_MEMORY_COLUMNS} from public.memories where user_id = %s and category = %s"


def _utc(moment: datetime) -> datetime:
    """psycopg returns timestamptz in the session time zone; models hold UTC."""
    return moment.astimezone(UTC)


def _memory(row: tuple[Any, ...]) -> Memory:
    mid, user_id, category, key, value, source, created_at, updated_at, thread_id, item_id = row
    return Memory(
        id=mid,
        user_id=user_id,
        category=category,
        key=key,
        value=value,
        source=source,
        thread_id=thread_id,
        item_id=item_id,
        created_at=_utc(created_at),
        updated_at=_utc(updated_at),
    )


def _change(row: tuple[Any, ...]) -> MemoryChange:
    cid, user_id, at, op, category, key, memory_id, source, thread_id, item_id = row
    return MemoryChange(
        id=cid,
        user_id=user_id,
        at=_utc(at),
        op=op,
        category=category,
        key=key,
        memory_id=memory_id,
        source=source,
        thread_id=thread_id,
        item_id=item_id,
    )


def _note(user_id: str, change: ChangeNote) -> dict[str, Any]:
    return {
        "user": user_id,
        "change": change.id,
        "at": change.at,
        "change_source": change.source,
        "thread": change.thread_id,
        "item": change.item_id,
    }


def _profile(row: tuple[Any, ...]) -> Profile:
    pid, identity, email, first, created_at, last_seen_at, enabled = row
    return Profile(
        id=pid,
        identity=identity,
        email=email,
        is_first_login=first,
        memory_enabled=enabled,
        created_at=_utc(created_at),
        last_seen_at=_utc(last_seen_at),
    )


class PostgresMemoryStore(MemoryStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _upsert(
        self,
        user_id: str,
        category: str,
        key: str,
        value: str,
        origin: Provenance,
        now: datetime,
        new_id: str,
        change: ChangeNote,
    ) -> Memory:
        params = {
            **_note(user_id, change),
            "category": category,
            "key": key,
            "id": new_id,
            "value": value,
            "source": origin.source,
            "thread": origin.thread_id,
            "item": origin.item_id,
            "now": now,
        }
        rows = await self._db.run(
            user_id,
            lock_user(user_id),
            (_TRIM_BEFORE_ONE, params),
            (_UPSERT_MEMORY, params),
            *reindex_statements(user_id, category, key, value, epoch_us(now)),
            (_GET_MEMORY, [user_id, category, key]),
        )
        return _memory(rows[0])

    async def _stale(self, updated_before: datetime, batch: int) -> AsyncIterator[list[tuple[str, str, str]]]:
        # across users: runs unbound (the owner's policy lets it through when no user is claimed)
        cursor: list[Any] = [None, "", "", ""]
        while True:
            rows = await self._db.run(
                None,
                (
                    "select updated_at, user_id, category, key from public.memories "
                    "where updated_at < %(before)s and (%(at)s::timestamptz is null "
                    "or (updated_at, user_id, category, key) > (%(at)s::timestamptz, %(user)s, %(category)s, %(key)s)) "
                    "order by updated_at, user_id, category, key limit %(limit)s",
                    {
                        "before": updated_before,
                        "at": cursor[0],
                        "user": cursor[1],
                        "category": cursor[2],
                        "key": cursor[3],
                        "limit": batch,
                    },
                ),
            )
            if not rows:
                return
            cursor = list(rows[-1])
            yield [(str(r[1]), str(r[2]), str(r[3])) for r in rows]
            if len(rows) < batch:
                return

    async def _history(self, user_id: str, limit: int) -> list[MemoryChange]:
        rows = await self._db.run(user_id, (_HISTORY, [user_id, limit]))
        return [_change(row) for row in rows]

    async def _replace_history(self, user_id: str, changes: list[MemoryChange]) -> None:
        oldest_first = list(reversed(changes))
        columns = {
            name: [getattr(c, name) for c in oldest_first]
            for name in ("id", "at", "op", "category", "key", "memory_id", "source", "thread_id", "item_id")
        }
        await self._db.run(
            user_id,
            lock_user(user_id),
            ("delete from public.memory_changes where user_id = %s", [user_id]),
            (_REPLACE_HISTORY, {"user": user_id, **columns}),
        )

    async def _get(self, user_id: str, category: str, key: str) -> Memory | None:
        rows = await self._db.run(user_id, (_GET_MEMORY, [user_id, category, key]))
        return _memory(rows[0]) if rows else None

    async def _list(self, user_id: str, category: str | None) -> list[Memory]:
        if category is None:
            rows = await self._db.run(user_id, (_LIST_MEMORIES, [user_id]))
        else:
            rows = await self._db.run(user_id, (_LIST_CATEGORY, [user_id, category]))
        return [_memory(row) for row in rows]

    async def _delete(
        self, user_id: str, category: str, key: str, change: ChangeNote, *, updated_before: datetime | None = None
    ) -> bool:
        # its postings go by the cascade
        params = {**_note(user_id, change), "category": category, "key": key, "before": updated_before}
        statements = (lock_user(user_id), (_TRIM_BEFORE_ONE, params), (_DELETE_MEMORY, params))
        return bool(await self._db.run(user_id, *statements))

    async def _delete_from(self, user_id: str, thread_id: str, change: ChangeNote) -> int:
        # their postings go by the cascade
        params = {**_note(user_id, change), "thread": thread_id}
        statements = (lock_user(user_id), (_DELETE_FROM_THREAD, params), (_COUNT_FORGOTTEN, params))
        rows = await self._db.run(user_id, *statements)
        return int(rows[0][0])

    async def _search(self, user_id: str, terms: list[str], limit: int) -> list[Memory]:
        if len(terms) > MAX_PACKED_TERMS:  # a very long query: rank from the postings themselves
            return await self._search_postings(user_id, terms, limit)
        params = {"user": user_id, "terms": terms, "limit": limit}
        rows = await self._db.run(user_id, (_CANDIDATES, params))
        if not rows:
            return []
        count, with_postings, frequencies = rows[0][:3]
        weights = term_weights(count, dict(zip(with_postings, frequencies, strict=True)))
        # each candidate's memory columns (row[4:]) by ref: a Memory is built only for the winners
        columns: dict[tuple[str, str], tuple[Any, ...]] = {}
        candidates = []
        for row in rows:
            memory_id, _, category, key, _, _, _, updated_at, _, _ = row[4:]
            columns[(category, key)] = row[4:]
            fields = unpack_fields(row[3], len(terms))
            candidates.append(Candidate((category, key), fields, epoch_us(_utc(updated_at)), memory_id))
        return [_memory(columns[ref]) for ref in rank_candidates(candidates, terms, weights, limit)]

    async def _search_postings(self, user_id: str, terms: list[str], limit: int) -> list[Memory]:
        rows = await self._db.run(user_id, (POSTINGS, {"user": user_id, "terms": terms}))
        count, postings = read_postings(rows, terms)
        refs = rank_postings(postings, count, limit)
        if not refs:
            return []
        rows = await self._db.run(user_id, (_GET_MEMORIES, [user_id, [r[0] for r in refs], [r[1] for r in refs]]))
        found = {(memory.category, memory.key): memory for memory in map(_memory, rows)}
        return [found[ref] for ref in refs if ref in found]


class PostgresProfileStore(ProfileStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _ensure(self, user_id: str, identity: str | None, email: str | None, now: datetime) -> Profile:
        params = {
            "id": user_id,
            "identity": identity,
            "email": email,
            "now": now,
            "enabled": self.default_memory_enabled,
        }
        rows = await self._db.run(user_id, (_ENSURE_PROFILE, params))
        return _profile(rows[0])  # an upsert with RETURNING always returns its row

    async def _get(self, user_id: str) -> Profile | None:
        rows = await self._db.run(user_id, (_GET_PROFILE, [user_id]))
        return _profile(rows[0]) if rows else None

    async def _set_memory_enabled(self, user_id: str, enabled: bool, now: datetime) -> Profile:
        rows = await self._db.run(user_id, (_SET_MEMORY_ENABLED, {"id": user_id, "now": now, "enabled": enabled}))
        return _profile(rows[0])
