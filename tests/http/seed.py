"""Data the HTTP and browser tests seed straight into the store."""

from __future__ import annotations

from datetime import datetime

from chatkit.types import (
    ActiveStatus,
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)

from stores import UserStore


async def voice_thread(store: UserStore, user: str, said: str, answered: str, *, thread_id: str | None = None) -> str:
    """A call transcript stored the way the agent's VoiceTranscript stores it."""
    context = {"user_id": user}
    thread = ThreadMetadata(
        id=thread_id or f"thr_voice{user[:8]}",
        title="Voice call 2026-12-04 10:00",
        created_at=datetime(2026, 12, 4, 10, 0),
        status=ActiveStatus(),
        metadata={"source": "voice", "room": f"user-{user}", "job_id": "job1"},
    )
    threads = store.threads
    await threads.save_thread(thread, context)
    await threads.add_thread_item(
        thread.id,
        UserMessageItem(
            id=f"msg_u{thread.id}",
            thread_id=thread.id,
            created_at=datetime(2026, 12, 4, 10, 0, 1),
            content=[UserMessageTextContent(text=said)],
            attachments=[],
            inference_options=InferenceOptions(),
        ),
        context,
    )
    await threads.add_thread_item(
        thread.id,
        AssistantMessageItem(
            id=f"msg_a{thread.id}",
            thread_id=thread.id,
            created_at=datetime(2026, 12, 4, 10, 0, 2),
            content=[AssistantMessageContent(text=answered)],
        ),
        context,
    )
    return thread.id
