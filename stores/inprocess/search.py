"""The in-process backend's memory search index: postings per term, and per (term, field) newest first.

A memory matching a single query term scores exactly what every memory with that term
in the same field scores, so among those only the newest `limit` can rank (ties go to
the most recently updated, then the id). Memories matching several terms are found by
intersecting the terms' posting sets (in C). Those two small sets are the only
candidates `memory.ranking.rank_candidates` has to score, whatever the user stores.
"""

from __future__ import annotations

import bisect

from memory.models import Memory
from memory.ranking import (
    FIELD_CATEGORY,
    FIELD_KEY,
    FIELD_VALUE,
    Candidate,
    Posting,
    epoch_us,
    index_terms,
    rank_candidates,
    term_weights,
)

Ref = tuple[str, str]  # (category, key)
Entry = tuple[int, str, Ref]  # (-updated_us, memory id, ref): ascending = newest first, then by id


class TermIndex:
    """One user's postings; `add`/`remove` keep it in step with every memory write."""

    def __init__(self) -> None:
        self.postings: dict[str, dict[Ref, Posting[Ref]]] = {}
        self.newest: dict[tuple[str, int], list[Entry]] = {}

    def add(self, memory: Memory) -> None:
        ref = (memory.category, memory.key)
        updated_us = epoch_us(memory.updated_at)
        for term, field in index_terms(memory.category, memory.key, memory.value).items():
            self.postings.setdefault(term, {})[ref] = Posting(ref, field, updated_us, memory.id)
            bisect.insort(self.newest.setdefault((term, field), []), (-updated_us, memory.id, ref))

    def remove(self, memory: Memory) -> None:
        ref = (memory.category, memory.key)
        for term in index_terms(memory.category, memory.key, memory.value):
            posting = self.postings.get(term, {}).pop(ref, None)
            if posting is None:
                continue
            if not self.postings[term]:
                del self.postings[term]
            ordered = self.newest[(term, posting.field)]
            del ordered[bisect.bisect_left(ordered, (-posting.updated_us, posting.memory_id, ref))]
            if not ordered:
                del self.newest[(term, posting.field)]

    def best(self, terms: list[str], doc_count: int, limit: int) -> list[Ref]:
        """The refs `rank` would return for these query terms over all `doc_count` memories."""
        lists = [self.postings.get(term, {}) for term in terms]
        if not any(lists):
            return []
        weights = term_weights(doc_count, {term: len(found) for term, found in zip(terms, lists, strict=True)})
        several: set[Ref] = set()
        for i, first in enumerate(lists):
            for second in lists[i + 1 :]:
                several |= first.keys() & second.keys()
        picked = set(several)
        for term, found in zip(terms, lists, strict=True):
            if not found:
                continue
            for field in (FIELD_KEY, FIELD_CATEGORY, FIELD_VALUE):
                taken = 0
                for _, _, ref in self.newest.get((term, field), ()):
                    if ref in several:
                        continue
                    picked.add(ref)
                    taken += 1
                    if taken == limit:
                        break
        candidates = []
        for ref in picked:
            fields = tuple(found[ref].field if ref in found else 0 for found in lists)
            sample = next(found[ref] for found in lists if ref in found)
            candidates.append(Candidate(ref, fields, sample.updated_us, sample.memory_id))
        return rank_candidates(candidates, terms, weights, limit)
