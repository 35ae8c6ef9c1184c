"""A voice call written by the agent's transcript code is a ChatKit thread of the same user."""

from __future__ import annotations

from agent.transcript import VoiceTranscript
from memory import identity_to_uuid
from tests.fakes.openai_server import FakeOpenAIServer
from tests.http.conftest import RunningApp, Tokens, message_text, new_user, sse_events, user_message


async def test_a_voice_call_lists_opens_and_continues_in_text(
    api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    supabase_user = new_user()
    other = new_user()
    # the LiveKit participant identity is the Supabase user id; the agent maps it to the same UUID
    voice_user = identity_to_uuid(supabase_user.upper())
    assert voice_user == supabase_user
    transcript = VoiceTranscript(api.services.store, voice_user, room=f"user-{voice_user}", job_id="job-1")
    transcript.add("user", "Book a table for two on Friday.")
    transcript.add("assistant", "Done, a table for two on Friday at seven.")
    assert await transcript.aclose() == 0

    token = tokens.mint(supabase_user)
    listed = (await api.chatkit(token, {"type": "threads.list", "params": {}})).json()["data"]
    assert [t["id"] for t in listed] == [transcript.thread_id]
    assert listed[0]["title"].startswith("Voice call ")

    opened = await api.chatkit(token, {"type": "threads.get_by_id", "params": {"thread_id": transcript.thread_id}})
    items = opened.json()["items"]["data"]
    assert [(i["type"], i["content"][0]["text"]) for i in items] == [
        ("user_message", "Book a table for two on Friday."),
        ("assistant_message", "Done, a table for two on Friday at seven."),
    ]

    # someone else never sees it
    other_token = tokens.mint(other)
    assert (await api.chatkit(other_token, {"type": "threads.list", "params": {}})).json()["data"] == []
    assert (
        await api.chatkit(other_token, {"type": "threads.get_by_id", "params": {"thread_id": transcript.thread_id}})
    ).status_code == 404

    # continue the call in text: the model sees the spoken turns as history
    llm.responder.default_text = "It is at seven."  # type: ignore[attr-defined]
    response = await api.chatkit(
        token,
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": transcript.thread_id, "input": user_message("What time was it again?")},
        },
    )
    assert response.status_code == 200
    assert not [e for e in sse_events(response) if e["type"] == "error"]
    sent = llm.requests[-1]["messages"]
    spoken = [message_text(m) for m in sent if m["role"] in ("user", "assistant")]
    assert spoken[:3] == [
        "Book a table for two on Friday.",
        "Done, a table for two on Friday at seven.",
        "What time was it again?",
    ]
    page = (
        await api.chatkit(token, {"type": "items.list", "params": {"thread_id": transcript.thread_id, "order": "asc"}})
    ).json()
    assert [i["type"] for i in page["data"]] == ["user_message", "assistant_message"] * 2
    assert page["data"][-1]["content"][0]["text"] == "It is at seven."
