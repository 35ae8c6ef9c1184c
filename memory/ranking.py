"""Deterministic, in-process relevance ranking of a user's memories (no LLM, no I/O).

Every backend's `memories.search` and the agent's recall use this one ranker, so the
same query gives the same order whatever the storage.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Generic, NamedTuple, TypeVar

from memory.models import Memory

_TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "did",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "i'm",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "about",
        "know",
        "tell",
        "remember",
        "recall",
    ]
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEY_WEIGHT = 2.0
CATEGORY_WEIGHT = 1.5
VALUE_WEIGHT = 1.0


def _stem(token: str) -> str:
    """A tiny stemmer mapping inflections to one form: book/books, like/likes/liked/liking, box/boxes.

    Every form of a word must reach the same stem, so after the suffix a final 'e'
    and a doubled final letter are dropped too (love/loves -> lov, travel/travelling -> travel).
    """
    if len(token) <= 3 or token.isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        token = token[:-3] + "y"
    elif token.endswith(("sses", "xes", "zes", "ches", "shes")):
        token = token[:-2]
    elif token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    elif token.endswith("ing") and len(token) > 5:
        token = token[:-3]
    elif token.endswith("ed") and len(token) > 4:
        token = token[:-2]
    if len(token) > 3 and token.endswith("e"):
        token = token[:-1]
    if len(token) > 3 and token[-1] == token[-2]:
        token = token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Lower-case stemmed word tokens without stop words or single letters (the 's' of "dog's")."""
    return [_stem(t) for t in _TOKEN_RE.findall(text.lower()) if t not in _STOP_WORDS and (len(t) > 1 or t.isdigit())]


@lru_cache(maxsize=8192)
def _token_set(text: str) -> frozenset[str]:
    """Memories are ranked far more often than they change: tokenise each text once."""
    return frozenset(tokenize(text))


@lru_cache(maxsize=8192)
def _memory_tokens(
    key: str, category: str, value: str
) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """Key, category and value tokens of a memory, and their union (for a fast "any match?" test)."""
    key_terms, category_terms, value_terms = _token_set(key.replace("_", " ")), _token_set(category), _token_set(value)
    return key_terms, category_terms, value_terms, key_terms | category_terms | value_terms


FIELD_VALUE, FIELD_CATEGORY, FIELD_KEY = 1, 2, 3
FIELD_WEIGHTS = {FIELD_KEY: KEY_WEIGHT, FIELD_CATEGORY: CATEGORY_WEIGHT, FIELD_VALUE: VALUE_WEIGHT}


def query_terms(query: str) -> list[str]:
    """The distinct terms of a query in the fixed (sorted) order scores are summed in."""
    return sorted(set(tokenize(query)))


def index_terms(category: str, key: str, value: str) -> dict[str, int]:
    """Each term of a memory with the best field it appears in (FIELD_KEY > FIELD_CATEGORY > FIELD_VALUE).

    What a backend's search index stores per memory: exactly the facts `rank` uses
    to score it, so ranking from the index gives the order `rank` gives.
    """
    key_terms, category_terms, value_terms, _ = _memory_tokens(key, category, value)
    fields = dict.fromkeys(value_terms, FIELD_VALUE)
    fields.update(dict.fromkeys(category_terms, FIELD_CATEGORY))
    fields.update(dict.fromkeys(key_terms, FIELD_KEY))
    return fields


def _idf(doc_count: int, document_frequency: dict[str, int]) -> dict[str, float]:
    return {term: math.log(1.0 + doc_count / df) for term, df in document_frequency.items() if df}


def _sort_key(score: float, updated_at: float, memory_id: str) -> tuple[float, float, str]:
    """Best score first, then the most recently updated, then the id: a total order."""
    return (-round(score, 9), -updated_at, memory_id)


def rank(memories: Iterable[Memory], query: str, limit: int = 5) -> list[Memory]:
    """The `limit` memories most relevant to `query`, best first; non-matching ones are left out.

    Score: for each query term, its inverse document frequency times the weight of
    the best field it appears in (key > category > value). Ties go to the most
    recently updated memory, then to the id, so the order is total.

    Runs on the voice reply's path, so it touches each memory once (cached token
    sets, a set-disjointness test) and keeps only the top `limit` with a heap.
    """
    if limit < 1:
        return []
    terms = frozenset(tokenize(query))
    if not terms:
        return []
    doc_count = 0
    matching: list[tuple[Memory, tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]]] = []
    document_frequency = dict.fromkeys(terms, 0)
    for memory in memories:
        doc_count += 1
        tokens = _memory_tokens(memory.key, memory.category, memory.value)
        if terms.isdisjoint(tokens[3]):
            continue
        matching.append((memory, tokens))
        for term in terms & tokens[3]:
            document_frequency[term] += 1
    if not matching:
        return []
    idf = _idf(doc_count, document_frequency)
    scored: list[tuple[tuple[float, float, str], Memory]] = []
    ordered_terms = sorted(terms)  # a fixed summation order: the same float score in every process
    for memory, (key_terms, category_terms, _, all_terms) in matching:
        score = 0.0
        for term in ordered_terms:
            if term not in all_terms:
                continue
            if term in key_terms:
                score += KEY_WEIGHT * idf[term]
            elif term in category_terms:
                score += CATEGORY_WEIGHT * idf[term]
            else:
                score += VALUE_WEIGHT * idf[term]
        scored.append((_sort_key(score, memory.updated_at.timestamp(), memory.id), memory))
    return [entry[1] for entry in heapq.nsmallest(limit, scored, key=lambda entry: entry[0])]


Ref = TypeVar("Ref", bound=Hashable)
MAX_PACKED_TERMS = 26  # field codes of this many terms fit in 52 bits (an int64, a Lua double)


class Posting(NamedTuple, Generic[Ref]):
    """One memory containing one term, as a search index stores it."""

    ref: Ref  # how the backend finds the memory again, e.g. its (category, key)
    field: int  # FIELD_KEY, FIELD_CATEGORY or FIELD_VALUE: where the term appears best
    updated_us: int  # updated_at in microseconds since the Unix epoch
    memory_id: str


class Candidate(NamedTuple, Generic[Ref]):
    """A memory matching a query: where each query term appears in it (0: absent), in query_terms order."""

    ref: Ref
    fields: tuple[int, ...]
    updated_us: int
    memory_id: str


def term_weights(doc_count: int, document_frequency: Mapping[str, int]) -> dict[str, dict[int, float]]:
    """What a term adds to a memory's score for each field it can appear in (as `rank` computes it)."""
    idf = _idf(doc_count, dict(document_frequency))
    return {term: {field: weight * value for field, weight in FIELD_WEIGHTS.items()} for term, value in idf.items()}


def rank_candidates(
    candidates: Iterable[Candidate[Ref]], terms: list[str], weights: Mapping[str, Mapping[int, float]], limit: int
) -> list[Ref]:
    """The refs of the `limit` best candidates, scored and ordered exactly as `rank` would.

    `terms` are the query's `query_terms` and `weights` come from `term_weights` over
    ALL the user's memories, so any set of candidates that contains the true top
    `limit` yields exactly `rank`'s answer: scores are summed in the same (sorted) term
    order with the same float operations, and ties break on the same keys
    (`updated_us / 10**6` is exactly `updated_at.timestamp()`).
    """
    if limit < 1:
        return []
    keyed = []
    for candidate in candidates:
        score = 0.0
        for term, field in zip(terms, candidate.fields, strict=True):
            if field:
                score += weights[term][field]
        keyed.append((_sort_key(score, candidate.updated_us / 10**6, candidate.memory_id), candidate.ref))
    return [entry[1] for entry in heapq.nsmallest(limit, keyed, key=lambda entry: entry[0])]


def unpack_fields(packed: int, count: int) -> tuple[int, ...]:
    """Field codes packed as sum(field * 4**i) by a backend's query (2 bits per term)."""
    return tuple((int(packed) >> (2 * index)) & 3 for index in range(count))


def rank_postings(postings: Mapping[str, Iterable[Posting[Ref]]], doc_count: int, limit: int) -> list[Ref]:
    """The refs of the `limit` best memories, from every posting of the query terms.

    `postings` maps each query term to every memory of the user containing it and
    `doc_count` is how many memories the user has: all `rank` needs, so the result is
    `rank` over all the user's memories, memory for memory.
    """
    lists = {term: list(found) for term, found in postings.items()}
    terms = sorted(lists)
    weights = term_weights(doc_count, {term: len(found) for term, found in lists.items()})
    fields: dict[Ref, list[int]] = {}
    seen: dict[Ref, Posting[Ref]] = {}
    for index, term in enumerate(terms):
        for posting in lists[term]:
            fields.setdefault(posting.ref, [0] * len(terms))[index] = posting.field
            seen[posting.ref] = posting
    candidates = (
        Candidate(ref, tuple(codes), seen[ref].updated_us, seen[ref].memory_id) for ref, codes in fields.items()
    )
    return rank_candidates(candidates, terms, weights, limit)


def epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def prepare(memories: Iterable[Memory]) -> None:
    """Tokenise memories ahead of time (e.g. in a worker thread), so the first `rank` is as fast as later ones."""
    for memory in memories:
        _memory_tokens(memory.key, memory.category, memory.value)
