"""A deterministic categoriser for things users say about themselves (no LLM).

The model usually names a category when it calls `remember`; when it gives none,
or one we do not use, the statement itself decides, so the same sentence always
lands in the same category and upserts hit the same row.
"""

from __future__ import annotations

import re

from memory.models import normalize_category

PREFERENCE = "preference"
INTEREST = "interest"
RELATIONSHIP = "relationship"
PERSONAL = "personal"
WORK = "work"
GOAL = "goal"
FACT = "fact"

KNOWN_CATEGORIES: frozenset[str] = frozenset({PREFERENCE, INTEREST, RELATIONSHIP, PERSONAL, WORK, GOAL, FACT})
DEFAULT_CATEGORY = FACT

# names models commonly use for our categories
_ALIASES: dict[str, str] = {
    "preferences": PREFERENCE,
    "likes": PREFERENCE,
    "dislikes": PREFERENCE,
    "favorite": PREFERENCE,
    "favourite": PREFERENCE,
    "favorites": PREFERENCE,
    "favourites": PREFERENCE,
    "food": PREFERENCE,
    "diet": PREFERENCE,
    "interests": INTEREST,
    "hobby": INTEREST,
    "hobbies": INTEREST,
    "passion": INTEREST,
    "relationships": RELATIONSHIP,
    "family": RELATIONSHIP,
    "friend": RELATIONSHIP,
    "friends": RELATIONSHIP,
    "people": RELATIONSHIP,
    "person": RELATIONSHIP,
    "contact": RELATIONSHIP,
    "contacts": RELATIONSHIP,
    "pet": RELATIONSHIP,
    "pets": RELATIONSHIP,
    "personal_info": PERSONAL,
    "personal_information": PERSONAL,
    "profile": PERSONAL,
    "identity": PERSONAL,
    "bio": PERSONAL,
    "about": PERSONAL,
    "location": PERSONAL,
    "name": PERSONAL,
    "job": WORK,
    "career": WORK,
    "occupation": WORK,
    "profession": WORK,
    "employment": WORK,
    "school": WORK,
    "education": WORK,
    "goals": GOAL,
    "plan": GOAL,
    "plans": GOAL,
    "aspiration": GOAL,
    "aspirations": GOAL,
    "facts": FACT,
    "health": FACT,
    "medical": FACT,
    "allergy": FACT,
    "allergies": FACT,
    "general": FACT,
    "other": FACT,
    "misc": FACT,
    "note": FACT,
    "notes": FACT,
    "info": FACT,
}


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


# Order matters: the first rule that matches wins (health before pets, relatives before "love").
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        FACT,
        _words(
            r"allerg\w*",
            r"intoleran\w*",
            r"diabet\w*",
            r"asthma\w*",
            r"celiac",
            r"coeliac",
            r"epilep\w*",
            r"medication\w*",
            r"blood type",
            r"disabilit\w*",
            r"condition",
        ),
    ),
    (
        RELATIONSHIP,
        _words(
            r"(?:step|half[- ])?(?:sister|brother|sibling|mother|father|mom|mum|dad|parent|son|daughter|child|kid)s?",
            r"children",
            r"(?:grand)(?:ma|pa|mother|father|son|daughter|child|children|parent)s?",
            r"wife",
            r"husband",
            r"spouse",
            r"partner",
            r"fianc[eé]e?",
            r"girlfriend",
            r"boyfriend",
            r"friends?",
            r"best friend",
            r"cousins?",
            r"aunts?",
            r"uncles?",
            r"nieces?",
            r"nephews?",
            r"in-laws?",
            r"colleagues?",
            r"coworkers?",
            r"co-workers?",
            r"boss",
            r"manager",
            r"roommates?",
            r"neighbou?rs?",
            r"dog",
            r"cat",
            r"pet",
            r"puppy",
            r"kitten",
            r"married to",
            r"dating",
        ),
    ),
    (
        PREFERENCE,
        _words(
            r"favou?rite",
            r"prefer\w*",
            r"rather",
            r"(?:do ?n[o']?t|never) (?:like|want|eat|drink|enjoy)",
            r"dislike\w*",
            r"hate\w*",
            r"can'?t stand",
            r"call me",
            r"like (?:it|my|to be|them) ",
            r"vegetarian",
            r"vegan",
            r"pescatarian",
            r"teetotal\w*",
            r"(?:i|i'm|im) like",
            r"likes?",
        ),
    ),
    (
        WORK,
        _words(
            r"work(?:s|ing)? (?:at|for|as|in)",
            r"job",
            r"employ\w*",
            r"occupation",
            r"profession\w*",
            r"career",
            r"company",
            r"office",
            r"studying",
            r"student",
            r"university",
            r"college",
            r"school",
        ),
    ),
    (
        PERSONAL,
        _words(
            r"name",
            r"named",
            r"called",
            r"birthday",
            r"born",
            r"years? old",
            r"age",
            r"live(?:s|d)? (?:in|at|near)",
            r"(?:i'm|i am|im) from",
            r"hometown",
            r"address",
            r"pronouns?",
            r"nationality",
            r"speak\w*",
            r"language",
        ),
    ),
    (
        GOAL,
        _words(
            r"goals?",
            r"plan(?:s|ning)? to",
            r"want(?:s)? to",
            r"hope(?:s)? to",
            r"dream(?:s)? (?:of|to)",
            r"trying to",
            r"learning",
            r"aim(?:s|ing)? to",
            r"saving (?:up )?for",
            r"training for",
        ),
    ),
    (
        INTEREST,
        _words(
            r"love(?:s)?",
            r"enjoy(?:s)?",
            r"into",
            r"hobb(?:y|ies)",
            r"passion\w*",
            r"fan of",
            r"interest(?:ed|s)?",
            r"fond of",
            r"keen on",
            r"play(?:s|ing)?",
            r"reading",
            r"books?",
            r"music",
            r"sports?",
            r"collect(?:s|ing)?",
        ),
    ),
)


def _known(category: str | None) -> str | None:
    """The known category `category` names (directly or through an alias), else None."""
    if not category or not isinstance(category, str):
        return None
    try:
        normalised = normalize_category(category)
    except ValueError:
        return None
    if normalised in KNOWN_CATEGORIES:
        return normalised
    return _ALIASES.get(normalised) or _ALIASES.get(normalised.replace("-", "_"))


def infer_category(statement: str) -> str:
    """The category a self-statement belongs to, by the first matching rule; `fact` otherwise."""
    text = re.sub(r"[_\s]+", " ", statement.lower()).replace("’", "'")
    for category, pattern in _RULES:
        if pattern.search(text):
            return category
    return DEFAULT_CATEGORY


def categorize(key: str, value: str, category: str | None = None) -> str:
    """The category to store a memory under.

    A known category (or a common alias of one) from the model wins; otherwise the
    key and value are read as a statement: "I love reading books" -> interest,
    "my favourite colour is blue" -> preference, "my sister is Maya" -> relationship,
    "I'm allergic to nuts" -> fact.
    """
    known = _known(category)
    if known is not None:
        return known
    return infer_category(f"{key or ''} {value or ''}")


__all__ = ["DEFAULT_CATEGORY", "KNOWN_CATEGORIES", "categorize", "infer_category"]
