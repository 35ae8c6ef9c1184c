"""The Postgres memory search index: postings written with each memory, and searches that read them.

Terms come from the Python tokeniser (`memory.ranking.index_terms`), so the index
holds exactly what `memory.ranking.rank` scores; the tables are in sql/0006_search_index.sql.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from psycopg import AsyncConnection

from memory.ranking import (
    CATEGORY_WEIGHT,
    FIELD_CATEGORY,
    FIELD_KEY,
    KEY_WEIGHT,
    VALUE_WEIGHT,
    Posting,
    epoch_us,
    index_terms,
)
from stores.postgres.db import Statement

# A memory's postings, rebuilt from the stored row (id and updated_at as the upsert left them).
DELETE_POSTINGS = "delete from public.memory_terms where user_id = %s and category = %s and key = %s"
INSERT_POSTINGS = """
insert into public.memory_terms (user_id, term, category, key, field, updated_us, id)
select m.user_id, t.term, m.category, m.key, t.field, %s, m.id
from public.memories m cross join unnest(%s::text[], %s::smallint[]) as t (term, field)
where m.user_id = %s and m.category = %s and m.key = %s
"""
POSTINGS = """
select (select n from public.memory_counts where user_id = %(user)s), term, category, key, field, updated_us, id
from public.memory_terms where user_id = %(user)s and term = any(%(terms)s::text[])
"""
# One round trip: the terms' postings scored in SQL (approximately: sum order and ln()
# are the server's), then only the memories that can be in the top `limit` (a band
# below the k-th score, at most `limit` per field pattern) with their field patterns
# packed 2 bits per term, the exact document frequencies and the memory count, from
# which Python ranks exactly (memory.ranking.rank_candidates).
BAND = 1e-6
CANDIDATES = f"""
with hits as materialized (
  select term, category, key, field, updated_us, id from public.memory_terms
  where user_id = %(user)s and term = any(%(terms)s::text[])
), df as (
  select term, count(*) as df from hits group by term
), total as (
  select coalesce((select n from public.memory_counts where user_id = %(user)s), 0)::float8 as n
), w as (
  select df.term, ln(1.0::float8 + total.n / df.df::float8) as idf,
         array_position(%(terms)s::text[], df.term) - 1 as pos
  from df, total
), scored as materialized (
  select h.category, h.key, max(h.id) as id, max(h.updated_us) as updated_us,
         sum(h.field::bigint << (2 * w.pos)) as packed,
         sum(w.idf * case h.field when {FIELD_KEY} then {KEY_WEIGHT}::float8
                                  when {FIELD_CATEGORY} then {CATEGORY_WEIGHT}::float8
                                  else {VALUE_WEIGHT}::float8 end) as score
  from hits h join w on w.term = h.term
  group by h.category, h.key
), kth as (
  select score from scored order by score desc limit 1 offset %(limit)s - 1
), band as (
  select s.*, row_number() over (partition by packed order by updated_us desc, id collate "C") as place
  from scored s where score >= coalesce((select score from kth), '-Infinity'::float8) - %(band)s
)
select (select n from total)::bigint, (select array_agg(term order by term) from df),
       (select array_agg(df order by term) from df), b.packed, {{columns}}
from band b join public.memories m on m.user_id = %(user)s and m.category = b.category and m.key = b.key
where b.place <= %(limit)s
"""
_COPY_POSTINGS = "copy public.memory_terms (user_id, term, category, key, field, updated_us, id) from stdin"
_BATCH = 2000
_EXISTING = "select user_id, category, key, value, updated_at, id from public.memories"


def reindex_statements(user_id: str, category: str, key: str, value: str, updated_us: int) -> list[Statement]:
    """Statements replacing one memory's postings; run them after its upsert, in the same transaction."""
    fields = index_terms(category, key, value)
    return [
        (DELETE_POSTINGS, [user_id, category, key]),
        (INSERT_POSTINGS, [updated_us, list(fields), list(fields.values()), user_id, category, key]),
    ]


Postings = dict[str, list[Posting[tuple[str, str]]]]


def read_postings(rows: list[tuple[Any, ...]], terms: list[str]) -> tuple[int, Postings]:
    """The memory count and the postings per term from the POSTINGS query's rows."""
    postings: Postings = {term: [] for term in terms}
    count = 0
    for n, term, category, key, field, updated_us, memory_id in rows:
        count = int(n or 0)
        postings[term].append(Posting((category, key), field, updated_us, memory_id))
    return count, postings


async def index_existing(conn: AsyncConnection) -> None:
    """Index every stored memory (run by the migration runner right after 0006, same transaction).

    Reads the memories in batches through a server-side cursor and COPYs each batch's
    postings (the connection cannot fetch while a COPY is open, so they alternate).
    """
    async with conn.cursor(name="memory_agent_index_existing") as rows, conn.cursor() as out:
        await rows.execute(_EXISTING)
        while batch := await rows.fetchmany(_BATCH):
            async with out.copy(_COPY_POSTINGS) as copy:
                for user_id, category, key, value, updated_at, memory_id in batch:
                    updated_us = epoch_us(updated_at.astimezone(UTC))
                    for term, field in index_terms(category, key, value).items():
                        await copy.write_row((user_id, term, category, key, field, updated_us, memory_id))
