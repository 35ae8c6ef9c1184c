"""Indexed memory search in SQLite: read only the postings that can reach the top, rank them in Python.

A memory's score is the sum of what each query term adds for the field it appears in
(`memory.ranking`), and every term adds a positive amount. So a memory holding ONE
query term ranks below every other posting of that term that comes first in the
order (field desc, updated desc, id): each of those scores at least as much and wins
the tie-break. The top `limit` of the whole query are therefore among
- the first `limit` postings of each term in that order (the index memory_terms_best), and
- the memories holding two or more of the terms,
and nothing else needs reading. Memories holding several terms are found by walking
the postings of all terms but the most frequent one and probing the primary key for
a later term; aggregating every posting (the obvious GROUP BY) costs far more once a
common word has thousands of them. `memory.ranking.rank_candidates` then orders the
candidates exactly as `rank` orders all memories, with the exact document frequencies.
"""

from __future__ import annotations

import sqlite3

from memory.ranking import Candidate, rank_candidates, term_weights

Ref = tuple[str, str]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# served in this order by the index memory_terms_best (schema version 6): `limit` index entries
_BEST_POSTINGS = (
    "SELECT category, key, field, updated_us, id FROM memory_terms WHERE user_id = ? AND term = ? "
    "ORDER BY field DESC, updated_us DESC, id LIMIT ?"
)


def _shared_sql(later: int, every: int) -> str:
    """Postings (all query terms) of memories holding a given term and one of `later` other terms."""
    return f"""
        SELECT p.category, p.key, p.term, p.field, p.updated_us, p.id
        FROM memory_terms a
        CROSS JOIN memory_terms p  -- CROSS: `a` stays the outer loop, with or without statistics
          ON p.user_id = a.user_id AND p.term IN ({_marks(every)}) AND p.category = a.category AND p.key = a.key
        WHERE a.user_id = ? AND a.term = ? AND EXISTS (
            SELECT 1 FROM memory_terms b
            WHERE b.user_id = a.user_id AND b.term IN ({_marks(later)}) AND b.category = a.category AND b.key = a.key
        )
    """


def best_refs(conn: sqlite3.Connection, user_id: str, terms: list[str], limit: int) -> list[Ref]:
    """The (category, key) of the memories `rank` would return, best first (on the reader's thread)."""
    row = conn.execute("SELECT n FROM memory_counts WHERE user_id = ?", (user_id,)).fetchone()
    if not row or not row[0]:
        return []
    frequency: dict[str, int] = dict(
        conn.execute(
            f"SELECT term, count(*) FROM memory_terms WHERE user_id = ? AND term IN ({_marks(len(terms))}) "
            "GROUP BY term",
            (user_id, *terms),
        ).fetchall()
    )
    if not frequency:
        return []
    present = sorted(frequency, key=lambda term: (frequency[term], term))  # rarest first
    fields: dict[Ref, dict[str, int]] = {}
    stamps: dict[Ref, tuple[int, str]] = {}
    for index, term in enumerate(present[:-1]):
        later = present[index + 1 :]
        rows = conn.execute(_shared_sql(len(later), len(present)), (*present, user_id, term, *later))
        for category, key, found, field, updated_us, memory_id in rows:
            fields.setdefault((category, key), {})[found] = field
            stamps[(category, key)] = (updated_us, memory_id)
    for term in present:
        for category, key, field, updated_us, memory_id in conn.execute(_BEST_POSTINGS, (user_id, term, limit)):
            fields.setdefault((category, key), {})[term] = field
            stamps[(category, key)] = (updated_us, memory_id)
    candidates = [
        Candidate(ref, tuple(found.get(term, 0) for term in terms), *stamps[ref]) for ref, found in fields.items()
    ]
    return rank_candidates(candidates, terms, term_weights(row[0], frequency), limit)
