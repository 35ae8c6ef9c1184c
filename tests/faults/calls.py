"""Scripted calls through the real worker entrypoint, and the check that what they acknowledged is stored once.

Used by the fault tests (in-process) and by the scale-out worker processes. A call
greets, then for each turn the caller states a fact, the model calls `remember`
and answers; every text carries the call's tag, so a leak of one call's data into
another user's rows is found by a substring search.

"Acknowledged" is what the caller (or the model) was told succeeded: a memory
whose `remember` tool result said "Remembered ...", and every user/assistant
message of the session's history (the worker hands each one to the transcript
the moment it is added). The agent promises each of those ends up stored once.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.greeting import FIRST_CALL
from memory import identity_to_uuid
from memory.models import normalize_key
from stores import UserStore
from tests.agent.helpers import call, fake_call, system_texts, tool_outputs
from tests.fakes.scripted_llm import ScriptedLLM

REMEMBERED = "Remembered"


@dataclass
class CallRecord:
    """What one call did and what it was told, in JSON-friendly form (crosses process boundaries)."""

    tag: str
    identity: str
    user_id: str
    first_call: bool = False
    messages: list[str] = field(default_factory=list)  # user/assistant messages of the session, in order
    memories: dict[str, str] = field(default_factory=dict)  # normalised key -> value the tool confirmed
    turn_seconds: list[tuple[float, float]] = field(default_factory=list)  # (start, end), time.time()
    late_recalls: int = 0
    max_recall_overhead: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CallRecord:
        data = json.loads(text)
        data["turn_seconds"] = [tuple(pair) for pair in data["turn_seconds"]]
        return cls(**data)


def turn_text(tag: str, turn: int) -> str:
    return f"{tag} turn {turn}: please note fact {turn}"


def memory_key(tag: str, turn: int) -> str:
    return f"{tag} fact {turn}"


def memory_value(tag: str, turn: int) -> str:
    return f"value {turn} of {tag}"


def script(tag: str, turns: int) -> ScriptedLLM:
    """Greeting, then per turn: a `remember` tool call and a reply naming the turn."""
    steps: list[Any] = [[f"Hello {tag}."]]
    for turn in range(turns):
        steps.append([call("remember", category="fact", key=memory_key(tag, turn), value=memory_value(tag, turn))])
        steps.append([f"Reply {turn} to {tag}."])
    return ScriptedLLM(steps)


AfterTurn = Callable[[int], Awaitable[None]]


async def scripted_call(
    store: UserStore,
    identity: str,
    tag: str,
    turns: int,
    *,
    after_turn: AfterTurn | None = None,
    job_id: str | None = None,
) -> CallRecord:
    """One call through `agent.worker.entrypoint`; returns once the call is over and flushed."""
    scripted = script(tag, turns)
    record = CallRecord(tag=tag, identity=identity, user_id=identity_to_uuid(identity))
    async with fake_call(store, scripted, identity, room_name=f"room-{tag}", job_id=job_id or f"job-{tag}") as session:
        record.first_call = system_texts(scripted.requests[0])[-1] == FIRST_CALL
        for turn in range(turns):
            started = time.time()
            result: Any = await session.run(user_input=turn_text(tag, turn))
            record.turn_seconds.append((started, time.time()))
            if any(output.startswith(REMEMBERED) for output in tool_outputs(result)):
                record.memories[normalize_key(memory_key(tag, turn))] = memory_value(tag, turn)
            if after_turn is not None:
                await after_turn(turn)
        agent = session.current_agent
        stats = agent.recall_stats  # type: ignore[attr-defined]
        record.late_recalls = stats.late
        record.max_recall_overhead = max(stats.overhead_s, default=0.0)
    # the session is closed and the job's shutdown callbacks (the flush) have run
    record.messages = [
        item.text_content.strip()
        for item in session.history.items
        if item.type == "message" and item.role in ("user", "assistant") and item.text_content
    ]
    return record


def expected_messages(tag: str, turns: int) -> list[str]:
    """What a call that went through every turn said, in order."""
    texts = [f"Hello {tag}."]
    for turn in range(turns):
        texts += [turn_text(tag, turn), f"Reply {turn} to {tag}."]
    return texts


async def stored_transcripts(store: UserStore, user_id: str) -> list[list[str]]:
    """The message texts of each of the user's threads (every page), in stored order."""
    context = {"user_id": user_id}
    threads = await store.threads.load_threads(1000, None, "asc", context)
    assert not threads.has_more
    transcripts: list[list[str]] = []
    for thread in threads.data:
        texts: list[str] = []
        after = None
        while True:
            page = await store.threads.load_thread_items(thread.id, after, 100, "asc", context)
            texts += ["".join(part.text for part in item.content) for item in page.data]  # type: ignore[union-attr]
            if not page.has_more:
                break
            after = page.data[-1].id
        transcripts.append(texts)
    return transcripts


async def assert_stored_exactly_once(store: UserStore, records: Iterable[CallRecord]) -> None:
    """Every acknowledged memory and message is stored once; no user holds another user's tags."""
    by_user: dict[str, list[CallRecord]] = defaultdict(list)
    for record in records:
        by_user[record.user_id].append(record)
    for user_id, calls in by_user.items():
        memories = await store.memories.list(user_id)
        expected_memories = {key: value for rec in calls for key, value in rec.memories.items()}
        stored_memories = {m.key: m.value for m in memories}
        assert stored_memories == expected_memories, f"memories of {calls[0].identity} differ"
        assert len(memories) == len(stored_memories), f"a memory of {calls[0].identity} is stored twice"

        transcripts = sorted(await stored_transcripts(store, user_id))
        assert transcripts == sorted(rec.messages for rec in calls), f"transcripts of {calls[0].identity} differ"

        exported = json.dumps(await store.export_user(user_id))
        own = {rec.tag for rec in calls}
        foreign = [rec.tag for other, recs in by_user.items() if other != user_id for rec in recs]
        leaked = [tag for tag in foreign if _mentions(exported, tag) and tag not in own]
        assert not leaked, f"user {calls[0].identity} holds data of calls {leaked}"


def _mentions(text: str, tag: str) -> bool:
    """`tag` appears as a whole word (so tag `c1` does not match inside `c10`)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(tag)}(?![A-Za-z0-9])", text) is not None
