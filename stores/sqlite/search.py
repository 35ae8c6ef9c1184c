"""Indexed memory search in SQLite: the ranker's arithmetic runs in SQL, Python only orders a handful.

One read transaction: the memory count and each query term's document frequency,
then one grouped query over the terms' postings that scores every matching memory
and returns only those that can be in the top `limit` (a band below the k-th score,
at most `limit` per distinct field pattern), with their fields packed into one
integer. `memory.ranking.rank_candidates` then orders those exactly as `rank` would.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from memory.ranking import (
    FIELD_CATEGORY,
    FIELD_KEY,
    FIELD_VALUE,
    Candidate,
    rank_candidates,
    term_weights,
    unpack_fields,
)

BAND = 1e-6  # far wider than any float difference, far narrower than a real score gap

Ref = tuple[str, str]


def _candidates_sql(count: int) -> str:
    """The scoring query for `count` terms, built from constants only (terms and weights are parameters)."""
    names = ", ".join(f":t{i}" for i in range(count))
    packed = " ".join(f"WHEN :t{i} THEN field * {4**i}" for i in range(count))
    score = "0.0"
    for i in range(count):
        weight = (
            f"CASE field WHEN {FIELD_KEY} THEN :w{i}_{FIELD_KEY} WHEN {FIELD_CATEGORY} THEN :w{i}_{FIELD_CATEGORY} "
            f"ELSE :w{i}_{FIELD_VALUE} END"
        )
        score = f"({score} + COALESCE(MAX(CASE WHEN term = :t{i} THEN {weight} END), 0.0))"
    return f"""
        WITH scored AS MATERIALIZED (
            SELECT category, key, MAX(id) AS id, MAX(updated_us) AS updated_us,
                   SUM(CASE term {packed} END) AS packed, {score} AS score
            FROM memory_terms WHERE user_id = :user AND term IN ({names})
            GROUP BY +category, +key  -- `+`: read the terms' postings by primary key, not the user's all
        ), kth AS MATERIALIZED (
            SELECT score FROM scored ORDER BY score DESC LIMIT 1 OFFSET :limit - 1
        ), band AS (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY packed ORDER BY updated_us DESC, id) AS place
            FROM scored WHERE score >= COALESCE((SELECT score FROM kth), -1.0) - :band
        )
        SELECT category, key, id, updated_us, packed FROM band WHERE place <= :limit
    """


def best_refs(conn: sqlite3.Connection, user_id: str, terms: list[str], limit: int) -> list[Ref]:
    """The (category, key) of the memories `rank` would return, best first (on the reader's thread)."""
    row = conn.execute("SELECT n FROM memory_counts WHERE user_id = ?", (user_id,)).fetchone()
    if not row or not row[0]:
        return []
    marks = ", ".join("?" * len(terms))
    frequency = dict(
        conn.execute(
            f"SELECT term, count(*) FROM memory_terms WHERE user_id = ? AND term IN ({marks}) GROUP BY term",
            (user_id, *terms),
        ).fetchall()
    )
    if not frequency:
        return []
    weights = term_weights(row[0], frequency)
    params: dict[str, Any] = {"user": user_id, "limit": limit, "band": BAND}
    for i, term in enumerate(terms):
        params[f"t{i}"] = term
        for field in (FIELD_KEY, FIELD_CATEGORY, FIELD_VALUE):
            params[f"w{i}_{field}"] = weights.get(term, {}).get(field, 0.0)
    candidates = [
        Candidate((category, key), unpack_fields(packed, len(terms)), updated_us, memory_id)
        for category, key, memory_id, updated_us, packed in conn.execute(_candidates_sql(len(terms)), params)
    ]
    return rank_candidates(candidates, terms, weights, limit)
