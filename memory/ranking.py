"""Deterministic, in-process relevance ranking of a user's memories (no LLM, no I/O).

Every backend's `memories.search` and the agent's recall use this one ranker, so the
same query gives the same order whatever the storage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
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


@lru_cache(maxsize=65536)
def _token_set(text: str) -> frozenset[str]:
    """Memories are ranked far more often than they change: tokenise each text once."""
    return frozenset(tokenize(text))


def _fields(memory: Memory) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    return _token_set(memory.key.replace("_", " ")), _token_set(memory.category), _token_set(memory.value)


def rank(memories: Iterable[Memory], query: str, limit: int = 5) -> list[Memory]:
    """The `limit` memories most relevant to `query`, best first; non-matching ones are left out.

    Score: for each query term, its inverse document frequency times the weight of
    the best field it appears in (key > category > value). Ties go to the most
    recently updated memory, then to the id, so the order is total.
    """
    if limit < 1:
        return []
    terms = list(dict.fromkeys(tokenize(query)))
    pool: Sequence[Memory] = list(memories)
    if not terms or not pool:
        return []
    indexed = [(m, _fields(m)) for m in pool]
    doc_count = len(indexed)
    scored: list[tuple[float, Memory]] = []
    document_frequency = {t: sum(1 for _, (k, c, v) in indexed if t in k or t in c or t in v) for t in terms}
    for memory, (key_terms, category_terms, value_terms) in indexed:
        score = 0.0
        for term in terms:
            df = document_frequency[term]
            if df == 0:
                continue
            idf = math.log(1.0 + doc_count / df)
            if term in key_terms:
                score += KEY_WEIGHT * idf
            elif term in category_terms:
                score += CATEGORY_WEIGHT * idf
            elif term in value_terms:
                score += VALUE_WEIGHT * idf
        if score > 0:
            scored.append((score, memory))
    scored.sort(key=lambda pair: (-round(pair[0], 9), -pair[1].updated_at.timestamp(), pair[1].id))
    return [memory for _, memory in scored[:limit]]
