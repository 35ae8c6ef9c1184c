"""Red-team findings on the HTTP API (issue 14): signed links out of logs, request amplification,
control/bidi characters in names, deep JSON and erase-during-upload races, links on the served port."""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from api.devtoken import mint_dev_token
from memory.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.http.api_process import served_api
from tests.http.conftest import (
    HS256_SECRET,
    RunningApp,
    Tokens,
    message_text,
    new_user,
    serve,
    sse_events,
    user_message,
)
from tests.http.test_attachments_local import PNG, create, stored_path
from tests.http.test_livekit_token import LIVEKIT, decode

ROOT = Path(__file__).resolve().parents[2]
BIDI_NAME = "invoice\u202egnp.exe\x00\nline2\u200b"


def _env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "OPENAI_", "LIVEKIT_", "STORE_"))}
    base.pop("PUBLIC_BASE_URL", None)
    return {**base, "PYTHONPATH": str(ROOT), **values}


async def test_served_port_links_work_and_signatures_stay_out_of_the_access_log(tmp_path: Path) -> None:
    """`python -m api serve --port N` hands out links on port N, and the access log never shows `sig`."""
    supabase_url = "https://example.supabase.co"
    environment = _env(
        STORE_URL="memory://",
        FILES_URL=f"file://{tmp_path / 'files'}",
        SUPABASE_URL=supabase_url,
        SUPABASE_JWT_SECRET=HS256_SECRET,
    )
    settings = Settings(_env_file=None, supabase_url=supabase_url, supabase_jwt_secret=HS256_SECRET)  # type: ignore[call-arg,arg-type]
    token = mint_dev_token(settings, "carol@example.com")
    signatures: list[str] = []
    async with served_api(environment, tmp_path) as api:
        client, port = api.client, api.port
        created = await client.post(
            "/chatkit",
            json={
                "type": "attachments.create",
                "params": {"name": "a.png", "size": len(PNG), "mime_type": "image/png"},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 200, created.text
        attachment = created.json()
        upload_url = attachment["upload_descriptor"]["url"]
        assert upload_url.startswith(f"http://127.0.0.1:{port}/files/"), upload_url
        assert attachment["preview_url"].startswith(f"http://127.0.0.1:{port}/files/")
        uploaded = await client.post(upload_url, files={"file": ("a.png", PNG, "image/png")})
        assert uploaded.status_code == 200, uploaded.text
        shown = await client.get(attachment["preview_url"])
        assert shown.status_code == 200 and shown.content == PNG
        for url in (upload_url, attachment["preview_url"]):
            signatures.append(httpx.URL(url).params["sig"])
    log = api.output
    assert "/files/" in log and "sig=[redacted]" in log, log  # the access log still shows the request
    for signature in signatures:
        assert signature not in log


async def test_duplicate_attachments_are_merged_and_counts_capped(
    api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer
) -> None:
    user = new_user()
    token = tokens.mint(user)
    attachment = (await create(api, token, "note.txt", 5, "text/plain")).json()
    events = sse_events(
        await api.chatkit(
            token, {"type": "threads.create", "params": {"input": user_message("hi", [attachment["id"]] * 5_000)}}
        )
    )
    assert not [e for e in events if e["type"] == "error"], events
    message = next(e["item"] for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "user_message")
    assert [a["id"] for a in message["attachments"]] == [attachment["id"]]
    notes = sum(message_text(m).count("note.txt") for m in llm.requests[-1]["messages"])
    assert notes == 1

    many = [(await create(api, token, f"f{i}.txt", 5, "text/plain")).json()["id"] for i in range(11)]
    refused = await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("hi", many)}})
    assert refused.status_code == 400 and "at most 10 attachments" in refused.json()["detail"]

    huge = await api.chatkit(token, {"type": "threads.create", "params": {"input": user_message("x" * 100_000)}})
    assert huge.status_code == 400 and "limit is 20000" in huge.json()["detail"]
    parts = user_message("a")
    parts["content"] = [{"type": "input_text", "text": "a"}] * 500
    too_many = await api.chatkit(token, {"type": "threads.create", "params": {"input": parts}})
    assert too_many.status_code == 400 and "content parts" in too_many.json()["detail"]


async def test_control_and_bidi_characters_are_stripped_from_names(
    settings_factory: Callable[..., Settings], tokens: Tokens
) -> None:
    user = new_user()
    async with serve(settings_factory(**LIVEKIT)) as api:
        token = tokens.mint(user)
        created = await create(api, token, BIDI_NAME, len(PNG), "image/png")
        assert created.status_code == 200, created.text
        assert created.json()["name"] == "invoicegnp.exe line2"
        stored = await api.services.store.threads.load_attachment(created.json()["id"], {"user_id": user})
        assert stored.name == "invoicegnp.exe line2"
        only_controls = await create(api, token, "\u202e\x00\n", len(PNG), "image/png")
        assert only_controls.status_code == 400 and "name" in only_controls.json()["detail"]

        response = await api.client.post("/livekit/token", json={"name": BIDI_NAME}, headers=api.auth(token))
        assert response.status_code == 200, response.text
        assert decode(response.json()["token"])["name"] == "invoicegnp.exe line2"


async def test_deeply_nested_json_is_a_400(settings_factory: Callable[..., Settings], tokens: Tokens) -> None:
    nested = b"[" * 1000 + b"]" * 1000
    async with serve(settings_factory(**LIVEKIT)) as api:
        token = tokens.mint(new_user())
        response = await api.client.post("/livekit/token", content=nested, headers=api.auth(token))
        assert response.status_code == 400, response.text
        chat = await api.chatkit(token, b'{"type":"threads.list","params":' * 1000 + b"{}" + b"}" * 1000)
        assert chat.status_code == 400, chat.text


async def test_erasing_the_user_during_uploads_is_a_404_and_leaves_nothing(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    attachments = [(await create(api, token, f"f{i}.png", len(PNG), "image/png")).json() for i in range(6)]
    started = [asyncio.Event() for _ in attachments]
    erased = asyncio.Event()

    def body(index: int) -> Callable[[], AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            yield PNG[:100]
            started[index].set()
            await erased.wait()
            yield PNG[100:]

        return chunks

    async def put(index: int) -> httpx.Response:
        url = attachments[index]["upload_descriptor"]["url"]
        return await api.client.put(url, content=body(index)())

    uploads = [asyncio.create_task(put(i)) for i in range(len(attachments))]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), timeout=30)
    await asyncio.sleep(0.2)  # let every upload reach its temp file
    assert (await api.client.delete("/me", headers=api.auth(token))).status_code == 204
    erased.set()
    responses = await asyncio.gather(*uploads)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {404, 409}, [(r.status_code, r.text) for r in responses]
    assert all("create it again" in r.json()["detail"] or r.status_code == 409 for r in responses)
    for attachment in attachments:
        assert not stored_path(api, user, attachment["id"]).exists()
    user_dir = stored_path(api, user, "x").parent
    assert not user_dir.exists() or not any(user_dir.iterdir())


async def test_livekit_dev_secret_is_reported_once_not_on_every_token(
    settings_factory: Callable[..., Settings], tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    dev = {**LIVEKIT, "livekit_api_key": "devkey", "livekit_api_secret": "secret"}  # livekit-server --dev
    with caplog.at_level(logging.WARNING, logger="memory_agent.api"):
        async with serve(settings_factory(**dev)) as api:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _ in range(3):
                    response = await api.client.post("/livekit/token", headers=api.auth(tokens.mint(new_user())))
                    assert response.status_code == 200, response.text
    assert not [w for w in caught if issubclass(w.category, InsecureKeyLengthWarning)], [
        (str(w.message), w.filename, w.lineno) for w in caught
    ]
    notes = [r.getMessage() for r in caplog.records if "LIVEKIT_API_SECRET is shorter" in r.getMessage()]
    assert len(notes) == 1 and "LIVEKIT_KEYS=" in notes[0]
