"""How `/chatkit` answers bad requests: 400 malformed, 413 too large, 404 missing, 400 bad ids, 501 unsupported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

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
