"""Conversational recall quality: do the right memories come back when the user asks later?

    .venv/bin/python -m bench.recall_quality [--users 20] [--baseline f6d1a92] [--backend memory://]

Each simulated user talks to the agent over many sessions: 24 kinds of personal
facts (sister, job, favourite drink, allergy, ...) are stated in the session where
they come up, some are restated with a new value in a later session (the memory is
updated), and between them the agent saves a few hundred everyday memories that
compete for the same words (trips, books, meals, colleagues, other relatives).
Afterwards the user asks about each fact in 2-3 natural phrasings; the evidence for
each question is the memory (category, key) that answers it.

Printed: recall@1/5/10 (share of questions whose evidence is among the first k
results) for the ranker at `--baseline` (a git revision: the ranker before a
tokenising or ranking change), for the current ranker, and for the current
`memories.search` of a real store (the indexed path). A change may not lower recall@5.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import types
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memory import ranking
from memory.models import Memory, normalize_key
from stores import UserStore, open_store

KS = (1, 5, 10)
REPO = Path(__file__).resolve().parents[1]

# (category, key, values, questions): one kind of personal fact and how it is asked about later
FACTS: list[tuple[str, str, list[str], list[str]]] = [
    (
        "relationship",
        "sister",
        ["Maya, lives in Lisbon", "Zoe, a nurse in Leeds"],
        ["who is my sister", "what's my sister called", "tell me about my sister"],
    ),
    (
        "relationship",
        "brother",
        ["Tom, plays bass", "Karim, studies law"],
        ["what is my brother's name", "who's my brother"],
    ),
    (
        "relationship",
        "partner",
        ["Sam, a carpenter", "Alex, works in a bank"],
        ["who is my partner", "what does my partner do"],
    ),
    (
        "relationship",
        "best friend",
        ["Priya from school", "Jonas, my climbing buddy"],
        ["who is my best friend", "remind me who my best friend is"],
    ),
    (
        "relationship",
        "dog",
        ["a beagle called Rex", "a spaniel named Biscuit"],
        ["what is my dog called", "what breed is my dog"],
    ),
    (
        "preference",
        "favourite drink",
        ["green tea", "oat flat white", "sparkling water with lime"],
        ["what do I like to drink", "what's my favourite drink", "order me my usual drink"],
    ),
    (
        "preference",
        "favourite food",
        ["spicy ramen", "mushroom risotto"],
        ["what's my favourite food", "what food do I love"],
    ),
    (
        "preference",
        "coffee order",
        ["double espresso, no sugar", "decaf cappuccino"],
        ["how do I take my coffee", "what's my coffee order"],
    ),
    (
        "preference",
        "music",
        ["loves jazz, especially Coltrane", "into synthwave"],
        ["what music do I like", "which artists do I listen to"],
    ),
    (
        "preference",
        "favourite colour",
        ["teal", "burnt orange"],
        ["what's my favourite colour", "which colour do I like best"],
    ),
    ("personal", "birthday", ["12 March", "the 3rd of November"], ["when is my birthday", "when was I born"]),
    (
        "personal",
        "allergy",
        ["allergic to peanuts", "allergic to penicillin"],
        ["am I allergic to anything", "what allergies do I have"],
    ),
    (
        "personal",
        "home town",
        ["grew up in Porto", "from a village near Cork"],
        ["where did I grow up", "what's my home town"],
    ),
    (
        "personal",
        "diet",
        ["vegetarian since 2019", "avoids gluten"],
        ["do I have any diet restrictions", "am I vegetarian"],
    ),
    (
        "personal",
        "address",
        ["lives on Elm Street 4", "moved to Rua Augusta 10"],
        ["where do I live", "what's my address"],
    ),
    (
        "work",
        "job",
        ["software engineer at a bakery chain", "nurse on a night shift"],
        ["what is my job", "where do I work", "what do I do for work"],
    ),
    (
        "work",
        "manager",
        ["Helen, strict but fair", "Omar, new this year"],
        ["who is my manager", "who do I report to at work"],
    ),
    (
        "work",
        "project",
        ["migrating the billing system", "the new mobile app"],
        ["what project am I working on", "what's my current project at work"],
    ),
    (
        "goal",
        "marathon",
        ["run the Berlin marathon in September", "finish a half marathon under 2 hours"],
        ["what race am I training for", "what's my running goal"],
    ),
    (
        "goal",
        "language",
        ["learning Japanese, level N4", "practising Spanish with an app"],
        ["which language am I learning", "how is my language learning going"],
    ),
    (
        "interest",
        "books",
        ["reads science fiction, currently Dune", "loves crime novels"],
        ["what books do I read", "what am I reading at the moment"],
    ),
    (
        "interest",
        "hobby",
        ["bouldering twice a week", "restoring old bicycles"],
        ["what are my hobbies", "what do I do in my free time"],
    ),
    (
        "fact",
        "car",
        ["drives a red Fiat Panda", "an old blue Volvo estate"],
        ["what car do I drive", "what colour is my car"],
    ),
    (
        "fact",
        "phone",
        ["an old iPhone 8", "a Pixel with a cracked screen"],
        ["what phone do I have", "which phone do I use"],
    ),
]
# everyday memories that compete for the same words (kept deterministic by the seed)
FILLER_TOPICS = [
    ("fact", "trip", "went hiking near {place} with {person}"),
    ("interest", "book", "finished a book about {thing} recommended by {person}"),
    ("fact", "meal", "had {food} at a cafe in {place}"),
    ("relationship", "colleague", "{person} from work likes {thing}"),
    ("relationship", "cousin", "cousin {person} moved to {place}"),
    ("preference", "restaurant", "liked the {food} at a place in {place}"),
    ("fact", "purchase", "bought a new {thing} for the flat"),
    ("goal", "plan", "wants to visit {place} next year with {person}"),
]
PLACES = ["Lisbon", "Leeds", "Porto", "Berlin", "Kyoto", "Oslo", "Cork", "Madrid", "Seoul", "Quito"]
PEOPLE = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade"]
THINGS = ["jazz", "tea", "coffee", "running", "gardening", "chess", "cycling", "films", "music", "painting"]
FOODS = ["ramen", "tacos", "risotto", "curry", "dumplings", "pizza", "falafel", "paella"]


@dataclass(frozen=True)
class Question:
    user_id: str
    text: str
    evidence: tuple[str, str]  # (category, normalised key) of the memory that answers it


async def _converse(store_url: str, users: int, seed: int) -> tuple[UserStore, list[Question]]:
    """Store every user's sessions through `memories.remember`; return the store and the later questions."""
    chooser = random.Random(seed)
    store = await open_store(store_url)
    questions: list[Question] = []
    for _ in range(users):
        user_id = str(uuid.uuid4())
        sessions: list[list[tuple[str, str, str]]] = [[] for _ in range(40)]
        for category, key, values, asked in FACTS:
            first = chooser.randrange(len(sessions))
            sessions[first].append((category, key, values[0]))
            if chooser.random() < 0.3:  # restated later with a new value: the memory is updated
                sessions[chooser.randrange(first, len(sessions))].append((category, key, values[1]))
            questions += [Question(user_id, text, (category, normalize_key(key))) for text in asked]
        for index in range(300):
            category, key, template = chooser.choice(FILLER_TOPICS)
            value = template.format(
                place=chooser.choice(PLACES),
                person=chooser.choice(PEOPLE),
                thing=chooser.choice(THINGS),
                food=chooser.choice(FOODS),
            )
            sessions[chooser.randrange(len(sessions))].append((category, f"{key} {index}", value))
        for session in sessions:
            for category, key, value in session:
                await store.memories.remember(user_id, category, key, value, source="voice")
    return store, questions


def _baseline_ranker(revision: str) -> Callable[[Sequence[Memory], str, int], list[Memory]]:
    """`rank` as memory/ranking.py was at `revision` (loaded from git, not imported)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:memory/ranking.py"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType(f"ranking_at_{revision}")
    exec(compile(source, f"{revision}:memory/ranking.py", "exec"), module.__dict__)  # our own file, at a revision
    rank: Callable[[Sequence[Memory], str, int], list[Memory]] = module.rank
    return rank


def _recall(found: dict[Question, list[tuple[str, str]]]) -> dict[int, float]:
    return {k: sum(q.evidence in refs[:k] for q, refs in found.items()) / len(found) for k in KS}


async def run(args: argparse.Namespace) -> int:
    store, questions = await _converse(args.backend, args.users, args.seed)
    try:
        everything = {user: await store.memories.list(user) for user in {q.user_id for q in questions}}
        rankers = {
            f"ranker at {args.baseline} (before)": _baseline_ranker(args.baseline),
            "current ranker (after)": ranking.rank,
        }
        results: dict[str, dict[int, float]] = {}
        for label, rank in rankers.items():
            found = {q: [(m.category, m.key) for m in rank(everything[q.user_id], q.text, max(KS))] for q in questions}
            results[label] = _recall(found)
        indexed = {}
        for q in questions:
            hits = await store.memories.search(q.user_id, q.text, limit=max(KS))
            indexed[q] = [(m.category, m.key) for m in hits]
        results[f"current memories.search ({args.backend.split(':')[0]}, indexed)"] = _recall(indexed)
    finally:
        await store.aclose()
    memories = sum(len(rows) for rows in everything.values())
    print(f"# Recall quality: {args.users} users, {memories} memories, {len(questions)} questions (seed {args.seed})\n")
    print("| ranking | recall@1 | recall@5 | recall@10 |")
    print("|---|---:|---:|---:|")
    for label, scores in results.items():
        print(f"| {label} | {scores[1]:.3f} | {scores[5]:.3f} | {scores[10]:.3f} |")
    before, after = list(results.values())[:2]
    verdict = "ok" if after[5] >= before[5] else "LOWER: the change must not land"
    print(f"\nrecall@5 after vs before: {after[5]:.3f} vs {before[5]:.3f} ({verdict})")
    return 0 if after[5] >= before[5] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", default="f6d1a92", help="git revision of the ranker to compare against")
    parser.add_argument(
        "--backend", default="memory://", help="store URL for the indexed search (memory://, sqlite:///...)"
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
