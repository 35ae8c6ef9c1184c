"""Two-phase uploads to the local file backend over HTTP: limits, ownership, signed previews, deletion."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

from memory.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.http.conftest import RunningApp, Tokens, new_user, serve, sse_events, user_message

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def create(api: RunningApp, token: str, name: str, size: int, mime: str) -> httpx.Response:
    return await api.chatkit(
        token, {"type": "attachments.create", "params": {"name": name, "size": size, "mime_type": mime}}
    )


async def upload(api: RunningApp, token: str | None, attachment: dict[str, Any], data: bytes) -> httpx.Response:
    descriptor = attachment["upload_descriptor"]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if descriptor["method"] == "POST":
        files = {"file": (attachment["name"], data, attachment["mime_type"])}
        return await api.client.post(descriptor["url"], files=files, headers=headers)
    return await api.client.put(descriptor["url"], content=data, headers=headers)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def stored_path(api: RunningApp, user: str, attachment_id: str) -> Path:
    return Path(api.settings.files_url.removeprefix("file://")) / user / attachment_id


async def test_image_upload_preview_and_delete(api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer) -> None:
    user = new_user()
    token = tokens.mint(user)
    created = await create(api, token, "cat.png", len(PNG), "image/png")
    assert created.status_code == 200, created.text
    attachment = created.json()
    assert attachment["type"] == "image" and attachment["upload_descriptor"]["method"] == "POST"
    preview = attachment["preview_url"]
    anonymous = httpx.AsyncClient(timeout=10)  # like an <img> tag: no Authorization header
    try:
        assert (await anonymous.get(preview)).status_code == 404  # nothing uploaded yet

        response = await upload(api, token, attachment, PNG)
        assert response.status_code == 200, response.text
        assert stored_path(api, user, attachment["id"]).read_bytes() == PNG

        shown = await anonymous.get(preview)
        assert shown.status_code == 200 and shown.content == PNG
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["x-content-type-options"] == "nosniff"

        # a link for another attachment or user, or with a forged expiry, proves nothing
        assert (await anonymous.get(with_query(preview, exp="9999999999"))).status_code == 403
        assert (await anonymous.get(with_query(preview, u=new_user()))).status_code == 403
        assert (await anonymous.get(with_query(preview, sig="A" * 43))).status_code == 403

        # uploading twice is refused
        assert (await upload(api, token, attachment, PNG)).status_code == 409

        # the attachment goes into a message; the model is told about it; it gets a thread
        events = sse_events(
            await api.chatkit(
                token,
                {"type": "threads.create", "params": {"input": user_message("Look", attachments=[attachment["id"]])}},
            )
        )
        assert not [e for e in events if e["type"] == "error"]
        sent = json.dumps(llm.requests[-1]["messages"])  # the model sees the image itself
        assert "data:image/png;base64," + base64.b64encode(PNG).decode() in sent
        thread_id = events[0]["thread"]["id"]
        stored = await api.services.store.threads.load_attachment(attachment["id"], {"user_id": user})
        assert stored.thread_id == thread_id and stored.upload_descriptor is None

        # the message keeps no signed link; reading it gives a fresh one that works
        message = events[1]["item"]
        raw = await api.services.store.threads._get_item(user, thread_id, message["id"])
        assert raw is not None and "sig=" not in raw and "cat.png" in raw
        listed = await api.chatkit(token, {"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}})
        fresh = listed.json()["data"][0]["attachments"][0]["preview_url"]
        assert "sig=" in fresh
        reshown = await anonymous.get(fresh)
        assert reshown.status_code == 200 and reshown.content == PNG

        # delete: bytes and metadata are gone, the link stops working
        deleted = await api.chatkit(
            token, {"type": "attachments.delete", "params": {"attachment_id": attachment["id"]}}
        )
        assert deleted.status_code == 200
        assert not stored_path(api, user, attachment["id"]).exists()
        assert (await anonymous.get(preview)).status_code == 404
    finally:
        await anonymous.aclose()


async def test_put_upload_and_size_enforcement(api: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    token = tokens.mint(user)
    text = b"hello, notes\n" * 100
    attachment = (await create(api, token, "notes.txt", len(text), "text/plain")).json()
    assert attachment["type"] == "file"
    put = {**attachment, "upload_descriptor": {**attachment["upload_descriptor"], "method": "PUT"}}

    too_long = await upload(api, token, put, text + b"x" * 5000)
    assert too_long.status_code == 413 and "bytes" in too_long.json()["detail"]
    too_short = await upload(api, token, put, text[:10])
    assert too_short.status_code == 400 and f"{len(text)} bytes" in too_short.json()["detail"]
    assert not stored_path(api, user, attachment["id"]).exists()
    # a multipart body larger than announced is cut off while streaming too
    big = await upload(api, token, attachment, text + b"y" * 200_000)
    assert big.status_code == 413
    assert not stored_path(api, user, attachment["id"]).exists()

    assert (await upload(api, token, put, text)).status_code == 200
    assert stored_path(api, user, attachment["id"]).read_bytes() == text


async def test_limits_are_checked_when_the_attachment_is_created(api: RunningApp, tokens: Tokens) -> None:
    token = tokens.mint(new_user())
    too_big = await create(api, token, "huge.pdf", api.settings.max_upload_bytes + 1, "application/pdf")
    assert too_big.status_code == 400 and str(api.settings.max_upload_bytes) in too_big.json()["detail"]
    wrong_type = await create(api, token, "run.sh", 10, "application/x-sh")
    assert wrong_type.status_code == 400 and "not allowed" in wrong_type.json()["detail"]
    assert (await create(api, token, "ok.pdf", 10, "application/pdf")).status_code == 200


async def test_upload_links_are_presigned_for_one_user_and_one_file(api: RunningApp, tokens: Tokens) -> None:
    owner, intruder = new_user(), new_user()
    owner_token, intruder_token = tokens.mint(owner), tokens.mint(intruder)
    attachment = (await create(api, owner_token, "a.txt", 3, "text/plain")).json()
    url = attachment["upload_descriptor"]["url"]

    def with_url(new_url: str) -> dict[str, Any]:
        return {**attachment, "upload_descriptor": {**attachment["upload_descriptor"], "url": new_url}}

    # another signed-in user cannot use the owner's link, nor re-point it at themselves
    assert (await upload(api, intruder_token, attachment, b"abc")).status_code == 403
    assert (await upload(api, intruder_token, with_url(with_query(url, u=intruder)), b"abc")).status_code == 403
    # the signature covers the size and the type
    assert (await upload(api, owner_token, with_url(with_query(url, size="999")), b"abc")).status_code == 403
    assert (await upload(api, None, with_url(with_query(url, mime="image/png")), b"abc")).status_code == 403
    assert not stored_path(api, owner, attachment["id"]).exists()
    assert not stored_path(api, intruder, attachment["id"]).exists()
    # the untouched link works on its own (browsers may not send Authorization to upload URLs)
    assert (await upload(api, None, attachment, b"abc")).status_code == 200
    assert stored_path(api, owner, attachment["id"]).read_bytes() == b"abc"


async def test_expired_links_are_refused(settings_factory: Callable[..., Settings], tokens: Tokens) -> None:
    async with serve(settings_factory(files_url_ttl_seconds=1)) as api:
        token = tokens.mint(new_user())
        attachment = (await create(api, token, "a.png", 4, "image/png")).json()
        await asyncio.sleep(2.1)
        response = await upload(api, token, attachment, b"abcd")
        assert response.status_code == 403 and "expired" in response.json()["detail"]
        assert (await api.client.get(attachment["preview_url"])).status_code == 403


async def test_forget_user_removes_their_files_only(api: RunningApp, tokens: Tokens) -> None:
    alice, bob = new_user(), new_user()
    files = {}
    for user in (alice, bob):
        token = tokens.mint(user)
        attachment = (await create(api, token, "n.txt", 2, "text/plain")).json()
        assert (await upload(api, token, attachment, b"hi")).status_code == 200
        files[user] = stored_path(api, user, attachment["id"])
    assert (await api.client.delete("/me", headers=api.auth(tokens.mint(alice)))).status_code == 204
    assert not files[alice].exists() and not files[alice].parent.exists()
    assert files[bob].read_bytes() == b"hi"
