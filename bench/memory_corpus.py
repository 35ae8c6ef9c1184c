"""A large, plausible set of one user's memories and the questions asked about them, for search benchmarks.

10,000 memories of one person look like what the agent saves: short keys
("sister", "coffee order 12") under the usual categories, and values that are short
sentences mixing everyday words (likes, loves, weekend, friend: in thousands of
memories) with names, places and things drawn from a long-tailed vocabulary (most in
a handful of memories). Queries mix both kinds, so a search meets common terms with
thousands of postings as well as rare ones. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CATEGORIES = ["preference", "interest", "relationship", "personal", "work", "goal", "fact"]
COMMON = [
    "likes",
    "loves",
    "enjoys",
    "prefers",
    "hates",
    "wants",
    "weekend",
    "morning",
    "evening",
    "friend",
    "family",
    "home",
    "work",
    "trip",
    "favourite",
    "usually",
    "every",
    "week",
    "year",
    "new",
    "old",
    "drink",
    "food",
    "music",
    "book",
    "film",
    "city",
    "sister",
    "brother",
    "colleague",
]
_SYLLABLES = ["ba", "ko", "ri", "ma", "te", "lu", "no", "shi", "va", "den", "por", "qui", "zel", "an", "mir", "tos"]
_TEMPLATES = [
    "{c1} {w1} with {w2}",
    "{c1} {w1} {c2} {w2}",
    "{w1} on {c1} {c2}",
    "{c1} {w1}, {c2} {w2} and {w3}",
    "met {w1} at {w2} one {c1}",
    "{c1} the {w1} from {w2}",
    "{w1}",
]
QUERIES = [
    "what does the user like to drink",
    "who is my sister",
    "what music do I enjoy",
    "favourite food",
    "weekend plans with friends",
    "where did I travel last year",
]


@dataclass(frozen=True)
class Fact:
    category: str
    key: str
    value: str


def _vocabulary(chooser: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(chooser.choices(_SYLLABLES, k=chooser.randint(2, 4))))
    return sorted(words)


def memories(count: int, seed: int = 12) -> list[Fact]:
    """`count` distinct facts of one user (unique category/key)."""
    chooser = random.Random(seed)
    vocabulary = _vocabulary(chooser, 4000)
    weights = [1 / (rank + 20) for rank in range(len(vocabulary))]  # Zipf-like: a long tail of rare words

    def rare(k: int) -> list[str]:
        return chooser.choices(vocabulary, weights=weights, k=k)

    facts: list[Fact] = []
    for index in range(count):
        w1, w2, w3 = rare(3)
        c1, c2 = chooser.sample(COMMON, 2)
        template = chooser.choice(_TEMPLATES)
        key = f"{chooser.choice([c1, w1])} {rare(1)[0]} {index}"
        facts.append(Fact(chooser.choice(CATEGORIES), key, template.format(c1=c1, c2=c2, w1=w1, w2=w2, w3=w3)))
    return facts


def queries(facts: list[Fact], count: int, seed: int = 13) -> list[str]:
    """Everyday questions plus questions naming something from a random stored fact."""
    chooser = random.Random(seed)
    asked = list(QUERIES)
    while len(asked) < count:
        fact = chooser.choice(facts)
        words = [w.strip(",") for w in fact.value.split() if w.strip(",") not in ("with", "on", "and", "at", "the")]
        asked.append(f"what about {' '.join(chooser.sample(words, min(2, len(words))))}?")
    return asked
