"""How `/chatkit` answers bad requests: 400 malformed, 413 too large, 404 missing, 400 bad ids, 501 unsupported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.http.conftest import RunningApp, Tokens, new_user, user_message


async def test_malformed_and_oversized_bodies(api: RunningApp, tokens: Tokens) -> None:
    token = tokens.mint(new_user())
    for body in (b"", b"{", b"[]", b'{"type": "threads.explode", "params": {}}', b'{"type": "threads.list"}'):
        response = await api.chatkit(token, body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["detail"].startswith("malformed ChatKit request")
    huge = json.dumps(
        {"type": "threads.create", "params": {"input": user_message("x" * (api.settings.max_request_bytes + 10))}}
    ).encode()
    response = await api.chatkit(token, huge)
    assert response.status_code == 413 and str(api.settings.max_request_bytes) in response.json()["detail"]

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * (api.settings.max_request_bytes // 4)

    response = await api.client.post("/chatkit", content=chunked(), headers=api.auth(token))  # no Content-Length
    assert response.status_code == 413


async def test_missing_threads_are_404_before_any_stream(api: RunningApp, tokens: Tokens) -> None:
    token = tokens.mint(new_user())
    for request in (
        {"type": "threads.get_by_id", "params": {"thread_id": "thr_missing"}},
        {"type": "threads.add_user_message", "params": {"thread_id": "thr_missing", "input": user_message("hi")}},
        {"type": "threads.retry_after_item", "params": {"thread_id": "thr_missing", "item_id": "msg_1"}},
    ):
        response = await api.chatkit(token, request)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert "thr_missing" in response.json()["detail"]


async def test_invalid_ids_are_400_with_the_reason(api: RunningApp, tokens: Tokens) -> None:
    token = tokens.mint(new_user())
    response = await api.chatkit(token, {"type": "threads.get_by_id", "params": {"thread_id": "../../etc/passwd"}})
    assert response.status_code == 400 and "invalid thread id" in response.json()["detail"]
    response = await api.chatkit(token, {"type": "threads.list", "params": {"order": "sideways"}})
    assert response.status_code == 400


async def test_unsupported_operations_are_501(api: RunningApp, tokens: Tokens) -> None:
    token = tokens.mint(new_user())
    response = await api.chatkit(
        token, {"type": "input.transcribe", "params": {"audio_base64": "AAAA", "mime_type": "audio/webm"}}
    )
    assert response.status_code == 501 and "input.transcribe" in response.json()["detail"]


async def test_requests_are_parsed_once_not_by_a_fresh_sdk_adapter(
    api: RunningApp, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ChatKit's `process()` builds a TypeAdapter per request (~15 ms CPU); the endpoint must not use it."""
    import chatkit.server

    def no_adapter(*args: object, **kwargs: object) -> None:
        raise AssertionError("chatkit.server.TypeAdapter was built for a request")

    monkeypatch.setattr(chatkit.server, "TypeAdapter", no_adapter)
    token = tokens.mint(new_user())
    listed = await api.chatkit(token, json.dumps({"type": "threads.list", "params": {"limit": 5}}).encode())
    assert listed.status_code == 200 and listed.json()["data"] == []
    created = await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("hi")}})
    assert created.status_code == 200 and "thread.created" in created.text
