"""The JSON routes the memory inspector page uses: profile, memories, conversations (real server on loopback)."""

from __future__ import annotations

from collections.abc import Callable

from memory.settings import Settings
from tests.http.conftest import RunningApp, Tokens, new_user, serve, sse_events, user_message
from tests.http.seed import voice_thread


async def test_get_me_reports_the_caller_and_creates_nothing(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user, email="dana@example.com")
    first = await api.client.get("/me", headers=api.auth(token))
    assert first.status_code == 200
    assert first.json() == {"user_id": user, "email": "dana@example.com", "memory_enabled": True, "profile": None}
    assert await api.services.store.profiles.get(user) is None

    await api.services.store.profiles.ensure(user, identity="dana", email="dana@example.com")
    me = (await api.client.get("/me", headers=api.auth(token))).json()
    assert me["profile"]["id"] == user and me["profile"]["identity"] == "dana"
    assert me["memory_enabled"] is True


async def test_every_route_needs_a_token(api: RunningApp) -> None:
    for method, path in [
        ("GET", "/me"),
        ("GET", "/me/memories"),
        ("PUT", "/me/memories/work/employer"),
        ("DELETE", "/me/memories/work/employer"),
        ("GET", "/me/threads"),
        ("GET", "/me/threads/thr_1"),
        ("DELETE", "/me/threads/thr_1"),
    ]:
        response = await api.client.request(method, path, json={"value": "x"})
        assert response.status_code == 401, (method, path)
        assert "sign in" in response.json()["detail"]


async def test_list_filter_and_search_memories(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    memories = api.services.store.memories
    await memories.remember(user, "relationship", "sister", "Maya", source="voice")
    await memories.remember(user, "preference", "favourite colour", "green", source="chat")
    await memories.remember(user, "work", "employer", "Acme Rockets", source="voice")
    await memories.remember(new_user(), "work", "employer", "Someone else's employer")

    everything = (await api.client.get("/me/memories", headers=api.auth(token))).json()["memories"]
    assert [(m["category"], m["key"], m["value"]) for m in everything] == [
        ("work", "employer", "Acme Rockets"),
        ("preference", "favourite_colour", "green"),
        ("relationship", "sister", "Maya"),
    ]
    assert everything[0]["source"] == "voice" and everything[0]["created_at"]

    work = await api.client.get("/me/memories", params={"category": "Work"}, headers=api.auth(token))
    assert [m["value"] for m in work.json()["memories"]] == ["Acme Rockets"]

    found = await api.client.get("/me/memories", params={"query": "rockets"}, headers=api.auth(token))
    assert [m["value"] for m in found.json()["memories"]][:1] == ["Acme Rockets"]
    none = await api.client.get(
        "/me/memories", params={"query": "rockets", "category": "preference"}, headers=api.auth(token)
    )
    assert none.json()["memories"] == []

    bad = await api.client.get("/me/memories", params={"category": "no/slash"}, headers=api.auth(token))
    assert bad.status_code == 400 and "invalid memory category" in bad.json()["detail"]


async def test_put_corrects_a_value_and_marks_it_as_edited(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    store = api.services.store
    before = await store.memories.remember(user, "relationship", "sister", "Maria", source="voice")

    response = await api.client.put(
        "/me/memories/relationship/sister", json={"value": "  Maya  "}, headers=api.auth(token)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["category"], body["key"], body["value"], body["source"]) == ("relationship", "sister", "Maya", "api")
    stored = await store.memories.get(user, "relationship", "sister")
    assert stored is not None and stored.value == "Maya" and stored.id == before.id

    added = await api.client.put("/me/memories/Pet/Dog%20Name", json={"value": "Rex"}, headers=api.auth(token))
    assert added.status_code == 200 and added.json()["key"] == "dog_name"
    assert (await store.memories.get(user, "pet", "dog name")) is not None


async def test_put_refuses_bad_input_with_a_readable_reason(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    headers = api.auth(tokens.mint(user))
    cases = [
        (b"", "value"),
        (b"not json", "expected JSON like"),
        (b'{"value": 5}', "value"),
        (b'{"value": "x", "extra": 1}', "extra"),
        (b'{"value": "' + b"x" * 2001 + b'"}', "2000"),
    ]
    for body, hint in cases:
        response = await api.client.put(
            "/me/memories/work/employer", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, body
        assert hint in response.json()["detail"], response.json()
    blank = await api.client.put("/me/memories/work/employer", json={"value": "   "}, headers=headers)
    assert blank.status_code == 400 and "empty" in blank.json()["detail"]
    bad_key = await api.client.put("/me/memories/work/a%2Fb", json={"value": "x"}, headers=headers)
    assert bad_key.status_code in (400, 404)
    assert await api.services.store.memories.list(user) == []


async def test_delete_forgets_one_memory_and_only_the_callers(api: RunningApp, tokens: Tokens) -> None:
    owner, other = new_user(), new_user()
    store = api.services.store
    await store.memories.remember(owner, "work", "employer", "Acme")
    await store.memories.remember(owner, "work", "title", "Engineer")

    foreign = await api.client.delete("/me/memories/work/employer", headers=api.auth(tokens.mint(other)))
    assert foreign.status_code == 404 and "already forgotten" in foreign.json()["detail"]
    assert await store.memories.get(owner, "work", "employer") is not None

    headers = api.auth(tokens.mint(owner))
    assert (await api.client.delete("/me/memories/Work/Employer", headers=headers)).status_code == 204
    assert await store.memories.get(owner, "work", "employer") is None
    assert [m.key for m in await store.memories.list(owner)] == ["title"]
    assert (await api.client.delete("/me/memories/work/employer", headers=headers)).status_code == 404


async def test_conversations_list_read_and_delete(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    voice = await voice_thread(api.services.store, user, "my sister is Maya", "Nice, I'll remember Maya.")
    events = sse_events(
        await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("hello chat")}})
    )
    chat = events[0]["thread"]["id"]

    listed = (await api.client.get("/me/threads", headers=api.auth(token))).json()
    assert [(t["id"], t["source"]) for t in listed["threads"]] == [(chat, "chat"), (voice, "voice")]
    assert listed["has_more"] is False

    transcript = (await api.client.get(f"/me/threads/{voice}", headers=api.auth(token))).json()
    assert transcript["title"] == "Voice call 2026-12-04 10:00" and transcript["source"] == "voice"
    assert [(m["role"], m["text"]) for m in transcript["messages"]] == [
        ("user", "my sister is Maya"),
        ("assistant", "Nice, I'll remember Maya."),
    ]
    chat_transcript = (await api.client.get(f"/me/threads/{chat}", headers=api.auth(token))).json()
    assert [m["role"] for m in chat_transcript["messages"]] == ["user", "assistant"]

    stranger = api.auth(tokens.mint(new_user()))
    assert (await api.client.get(f"/me/threads/{voice}", headers=stranger)).status_code == 404
    assert (await api.client.delete(f"/me/threads/{voice}", headers=stranger)).status_code == 404
    assert (await api.client.get("/me/threads", headers=stranger)).json()["threads"] == []

    assert (await api.client.delete(f"/me/threads/{voice}", headers=api.auth(token))).status_code == 204
    remaining = (await api.client.get("/me/threads", headers=api.auth(token))).json()["threads"]
    assert [t["id"] for t in remaining] == [chat]
    gone = await api.client.get(f"/me/threads/{voice}", headers=api.auth(token))
    assert gone.status_code == 404 and "GET /me/threads" in gone.json()["detail"]
    assert (await api.client.delete(f"/me/threads/{voice}", headers=api.auth(token))).status_code == 404


async def test_threads_are_paged(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    for n in range(3):
        await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message(f"hi {n}")}})
    first = (await api.client.get("/me/threads", params={"limit": 2}, headers=api.auth(token))).json()
    assert len(first["threads"]) == 2 and first["has_more"] is True
    rest = await api.client.get("/me/threads", params={"limit": 2, "after": first["after"]}, headers=api.auth(token))
    assert len(rest.json()["threads"]) == 1 and rest.json()["has_more"] is False
    too_many = await api.client.get("/me/threads", params={"limit": 1000}, headers=api.auth(token))
    assert too_many.status_code == 422


async def test_openapi_documents_the_routes_with_response_models(api: RunningApp) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    paths = schema["paths"]
    assert {"get"} <= set(paths["/me"]) and {"get"} <= set(paths["/me/memories"])
    assert {"put", "delete"} <= set(paths["/me/memories/{category}/{key}"])
    assert {"get", "delete"} <= set(paths["/me/threads/{thread_id}"])
    put = paths["/me/memories/{category}/{key}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["required"] == ["value"]
    listed = paths["/me/memories"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"].endswith("/MemoryList")
    assert "thread_id" in schema["components"]["schemas"]["MemoryOut"]["properties"]
    patch = paths["/me"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"]["properties"]["memory_enabled"]
    assert patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Me")
    forget_from = paths["/me/threads/{thread_id}/memories"]["delete"]["responses"]["200"]
    assert forget_from["content"]["application/json"]["schema"]["$ref"].endswith("/Forgotten")


async def test_get_me_follows_the_consent_switch(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    headers = api.auth(tokens.mint(user))
    off = await api.client.patch("/me", json={"memory_enabled": False}, headers=headers)
    assert off.status_code == 200
    assert (off.json()["user_id"], off.json()["memory_enabled"]) == (user, False)  # answers like GET /me
    me = (await api.client.get("/me", headers=headers)).json()
    assert me["memory_enabled"] is False and me["profile"]["id"] == user
    # switched off, the user still corrects and forgets what is listed
    put = await api.client.put("/me/memories/work/employer", json={"value": "Acme"}, headers=headers)
    assert put.status_code == 200
    assert (await api.client.delete("/me/memories/work/employer", headers=headers)).status_code == 204
    assert await api.services.store.memories.list(user) == []
    await api.client.patch("/me", json={"memory_enabled": True}, headers=headers)
    assert (await api.client.get("/me", headers=headers)).json()["memory_enabled"] is True


async def test_get_me_reports_the_default_before_a_profile_exists(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    async with serve(settings_factory(memory_default_enabled=False)) as app:
        me = (await app.client.get("/me", headers=app.auth(tokens.mint(new_user())))).json()
    assert me["memory_enabled"] is False and me["profile"] is None


async def test_memories_show_their_conversation_and_can_be_forgotten_by_conversation(
    api: RunningApp, tokens: Tokens
) -> None:
    user = new_user()
    headers = api.auth(tokens.mint(user))
    store = api.services.store
    call = await voice_thread(store, user, "my sister is Maya and I work at Acme", "Noted.")
    await store.memories.remember(user, "relationship", "sister", "Maya", source="voice", thread_id=call, item_id="m1")
    await store.memories.remember(user, "work", "employer", "Acme", source="voice", thread_id=call, item_id="m1")
    await store.memories.remember(user, "preference", "colour", "green", source="chat", thread_id="thr_other")
    other_user = new_user()
    await store.memories.remember(other_user, "work", "employer", "Elsewhere", source="voice", thread_id=call)

    listed = (await api.client.get("/me/memories", headers=headers)).json()["memories"]
    by_key = {m["key"]: m for m in listed}
    assert (by_key["sister"]["thread_id"], by_key["sister"]["item_id"]) == (call, "m1")

    # deleting the conversation keeps what was learnt in it; forgetting by conversation removes exactly that
    assert (await api.client.delete(f"/me/threads/{call}", headers=headers)).status_code == 204
    forgot = await api.client.delete(f"/me/threads/{call}/memories", headers=headers)
    assert forgot.status_code == 200 and forgot.json() == {"forgotten": 2}
    assert [m.key for m in await store.memories.list(user)] == ["colour"]
    assert len(await store.memories.list(other_user)) == 1
    again = await api.client.delete(f"/me/threads/{call}/memories", headers=headers)
    assert again.json() == {"forgotten": 0}
    bad = await api.client.delete("/me/threads/not%20an%20id/memories", headers=headers)
    assert bad.status_code == 400 and "thread id" in bad.json()["detail"]
