"""The Postgres memory search index: postings written with each memory, and searches that read them.

Terms come from the Python tokeniser (`memory.ranking.index_terms`), so the index
holds exactly what `memory.ranking.rank` scores; the tables are in sql/0006_search_index.sql.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from psycopg import AsyncConnection

from memory.ranking import (
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
# One round trip reading only the postings that can reach the top `limit` (the argument
# is in stores/sqlite/search.py):
# - the first `limit` postings of each term in the order (field desc, updated desc, id),
#   read from the index memory_terms_best (sql/0008);
# - the memories holding two or more of the terms (one grouping pass over the terms'
#   postings, cheaper here than a primary-key probe per posting).
# Each candidate comes with its memory row and its field per term packed 2 bits per term,
# with the exact document frequencies (memory_term_counts, kept by triggers: sql/0009)
# and the memory count, from which Python ranks
# exactly (memory.ranking.rank_candidates). The lateral subqueries' LIMIT keeps the
# generic plan on index lookups.
CANDIDATES = """
with df as materialized (
  select term, df from public.memory_term_counts where user_id = %(user)s and term = any(%(terms)s::text[])
), shared as (
  select category, key from public.memory_terms
  where user_id = %(user)s and term = any(%(terms)s::text[]) and cardinality(%(terms)s::text[]) > 1
  group by category, key having count(*) > 1
), best as (
  select t.category, t.key from df cross join lateral (
    select category, key from public.memory_terms
    where user_id = %(user)s and term = df.term
    order by field desc, updated_us desc, id collate "C"
    limit %(limit)s
  ) t
), candidates as (
  select category, key from shared union select category, key from best
)
select (select n from public.memory_counts where user_id = %(user)s), (select array_agg(term order by term) from df),
       (select array_agg(df order by term) from df), f.packed, {columns}
from candidates c
cross join lateral (
  select * from public.memories m where m.user_id = %(user)s and m.category = c.category and m.key = c.key limit 1
) m
cross join lateral (
  select sum(p.field::bigint << (2 * (array_position(%(terms)s::text[], p.term) - 1))) as packed
  from public.memory_terms p
  where p.user_id = %(user)s and p.term = any(%(terms)s::text[]) and p.category = c.category and p.key = c.key
) f
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
