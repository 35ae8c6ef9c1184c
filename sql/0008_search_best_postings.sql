-- Memory Agent 0008: each term's postings in ranking order (issue 12).
--
-- A search reads the first `limit` postings of each query term in the order the ranker
-- prefers a memory holding only that term: best field first (3 key, 2 category,
-- 1 value), then the most recently updated, then the id (byte order, as Python compares
-- ids). With this index that is `limit` index entries instead of sorting every posting
-- of a common word (stores/postgres/search_index.py). Building it locks writes to
-- memory_terms while it runs; on a large table run `create index concurrently` with this
-- definition by hand first, and this file then finds it in place.

-- INCLUDE: the search reads those entries from the index alone (index-only scan).
create index if not exists memory_terms_best
  on public.memory_terms (user_id, term, field desc, updated_us desc, id collate "C") include (category, key);
