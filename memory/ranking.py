"""Deterministic, in-process relevance ranking of a user's memories (no LLM, no I/O).

Every backend's `memories.search` and the agent's recall use this one ranker, so the
same query gives the same order whatever the storage.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable
from functools import lru_cache

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
    idf = {term: math.log(1.0 + doc_count / df) for term, df in document_frequency.items() if df}
    scored: list[tuple[float, float, str, Memory]] = []
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
        scored.append((-round(score, 9), -memory.updated_at.timestamp(), memory.id, memory))
    return [entry[3] for entry in heapq.nsmallest(limit, scored, key=lambda entry: entry[:3])]


def prepare(memories: Iterable[Memory]) -> None:
    """Tokenise memories ahead of time (e.g. in a worker thread), so the first `rank` is as fast as later ones."""
    for memory in memories:
        _memory_tokens(memory.key, memory.category, memory.value)
