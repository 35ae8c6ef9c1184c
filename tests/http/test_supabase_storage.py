"""The Supabase Storage backend (`FILES_URL=supabase://<bucket>`) against a loopback fake of the
Storage REST API: signed upload URL, upload, signed download URL, remove, list."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from api.files import SupabaseFileStorage
from memory.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.http.conftest import RunningApp, Tokens, new_user, serve, sse_events, user_message
from tests.http.fake_supabase import FakeSupabase

BUCKET = "attachments"
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg-bytes" * 100


@pytest.fixture
async def api(settings_factory: Callable[..., Settings]) -> AsyncIterator[RunningApp]:
    async with serve(settings_factory(files_url=f"supabase://{BUCKET}")) as running:
        yield running


async def create(api: RunningApp, token: str, name: str, data: bytes, mime: str) -> dict:
    response = await api.chatkit(
        token, {"type": "attachments.create", "params": {"name": name, "size": len(data), "mime_type": mime}}
    )
    assert response.status_code == 200, response.text
    attachment: dict = response.json()
    return attachment


async def test_two_phase_upload_preview_and_delete(api: RunningApp, tokens: Tokens, supabase: FakeSupabase) -> None:
    user = new_user()
    token = tokens.mint(user)
    attachment = await create(api, token, "photo.jpg", JPEG, "image/jpeg")
    path = f"{user}/{attachment['id']}"
    descriptor = attachment["upload_descriptor"]
    assert descriptor["method"] == "PUT"
    assert attachment["preview_url"].startswith("data:image/gif")  # nothing to sign before the upload
    assert descriptor["url"].startswith(f"{supabase.url}/storage/v1/object/upload/sign/{BUCKET}/{path}?token=")
    sign_calls = supabase.storage_calls("object/upload/sign")
    assert [c.path for c in sign_calls] == [f"object/upload/sign/{BUCKET}/{path}"]
    assert sign_calls[0].authorization == f"Bearer {supabase.service_key}" and sign_calls[0].apikey

    # the browser uploads straight to Storage with the signed URL and the descriptor's headers
    async with httpx.AsyncClient() as browser:
        uploaded = await browser.put(descriptor["url"], content=JPEG, headers=descriptor["headers"])
        assert uploaded.status_code == 200, uploaded.text
        assert supabase.objects[f"{BUCKET}/{path}"] == (JPEG, "image/jpeg")

        # every read makes a fresh signed preview URL; it serves the bytes without any header
        loaded = await api.services.store.threads.load_attachment(attachment["id"], {"user_id": user})
        again = await api.services.store.threads.load_attachment(attachment["id"], {"user_id": user})
        assert str(loaded.preview_url) != str(again.preview_url)  # type: ignore[union-attr]
        shown = await browser.get(str(loaded.preview_url))  # type: ignore[union-attr]
        assert shown.status_code == 200 and shown.content == JPEG
        signs = [c for c in supabase.storage_calls("object/sign/")]
        assert {c.path for c in signs} == {f"object/sign/{BUCKET}/{path}"}
        assert all(c.json["expiresIn"] == str(api.settings.files_url_ttl_seconds) for c in signs)

    # the stored metadata never keeps a signed URL
    export = (await api.client.get("/me/export", headers=api.auth(token))).json()
    assert "token=" not in str(export["attachments"][0].get("preview_url"))

    deleted = await api.chatkit(token, {"type": "attachments.delete", "params": {"attachment_id": attachment["id"]}})
    assert deleted.status_code == 200
    assert f"{BUCKET}/{path}" not in supabase.objects
    assert [path] in [c.json["prefixes"] for c in supabase.storage_calls(f"object/{BUCKET}")]


async def test_another_users_attachment_is_404_and_delete_me_removes_only_own_objects(
    api: RunningApp, tokens: Tokens, supabase: FakeSupabase
) -> None:
    alice, bob = new_user(), new_user()
    paths: dict[str, list[str]] = {}
    async with httpx.AsyncClient() as browser:
        for user in (alice, bob):
            for name in ("one.txt", "two.txt"):
                attachment = await create(api, tokens.mint(user), name, b"data", "text/plain")
                descriptor = attachment["upload_descriptor"]
                assert (await browser.put(descriptor["url"], content=b"data", headers=descriptor["headers"])).is_success
                paths.setdefault(user, []).append(f"{BUCKET}/{user}/{attachment['id']}")
    alice_attachment_id = paths[alice][0].rsplit("/", 1)[1]
    response = await api.chatkit(
        tokens.mint(bob),
        {
            "type": "threads.create",
            "params": {
                "input": {
                    "content": [{"type": "input_text", "text": "x"}],
                    "attachments": [alice_attachment_id],
                    "inference_options": {},
                }
            },
        },
    )
    assert response.status_code == 404

    assert (await api.client.delete("/me", headers=api.auth(tokens.mint(alice)))).status_code == 204
    assert not any(p in supabase.objects for p in paths[alice])
    assert all(p in supabase.objects for p in paths[bob])
    lists = supabase.storage_calls(f"object/list/{BUCKET}")
    assert lists and all(c.json["prefix"] == alice for c in lists)
    assert all(
        c.authorization == f"Bearer {supabase.service_key}"
        for c in supabase.calls
        if "upload/sign" not in c.path or c.method == "POST"
    )


async def test_server_side_upload_and_unreachable_storage(supabase: FakeSupabase) -> None:
    storage = await SupabaseFileStorage.connect(
        supabase.url,
        supabase.service_key,
        BUCKET,
        max_bytes=1000,
        allowed_mime_types=frozenset({"text/plain"}),
        url_ttl_seconds=60,
    )
    user = new_user()
    try:
        await storage.upload(user, "atc_server", b"written by the server", "text/plain")
        assert supabase.objects[f"{BUCKET}/{user}/atc_server"][0] == b"written by the server"
        with pytest.raises(ValueError, match="1000 bytes"):
            await storage.upload(user, "atc_big", b"x" * 1001, "text/plain")
        with pytest.raises(ValueError):
            await storage.upload("../escape", "atc_x", b"x", "text/plain")
    finally:
        await storage.aclose()

    from api.files import FileStorageError
    from api.files.supabase_storage import PENDING_PREVIEW

    broken = await SupabaseFileStorage.connect(
        "http://127.0.0.1:9", "key", BUCKET, max_bytes=10, allowed_mime_types=frozenset(), url_ttl_seconds=60
    )
    try:
        # a preview is cosmetic: an outage shows the placeholder instead of breaking the thread
        assert await broken.preview_url(user, "atc_x") == PENDING_PREVIEW
        with pytest.raises(FileStorageError, match="unavailable") as caught:
            await broken.delete(user, "atc_x")
        assert "key" not in str(caught.value)
    finally:
        await broken.aclose()


async def test_storage_itself_enforces_our_size_and_type_limits(
    settings_factory: Callable[..., Settings], tokens: Tokens, supabase: FakeSupabase
) -> None:
    """A signed upload URL carries no limits: the bucket must, or a client could upload anything."""
    async with serve(settings_factory(files_url=f"supabase://{BUCKET}", max_upload_bytes=1000)) as api:
        token = tokens.mint(new_user())
        attachment = await create(api, token, "note.txt", b"tiny", "text/plain")
        limits = supabase.bucket(BUCKET)
        assert limits["public"] is False and limits["file_size_limit"] == 1000
        assert set(limits["allowed_mime_types"]) == api.services.files.allowed_mime_types
        small_jpeg = JPEG[:200]
        second = await create(api, token, "photo.jpg", small_jpeg, "image/jpeg")
        async with httpx.AsyncClient() as browser:
            declared_tiny = await browser.put(
                attachment["upload_descriptor"]["url"], content=b"x" * 5000, headers={"Content-Type": "text/plain"}
            )
            wrong_type = await browser.put(
                second["upload_descriptor"]["url"], content=small_jpeg, headers={"Content-Type": "application/x-sh"}
            )
        assert declared_tiny.status_code == 413 and wrong_type.status_code == 415
        assert not supabase.objects


async def test_a_public_bucket_is_refused_with_a_clear_message(
    settings_factory: Callable[..., Settings], tokens: Tokens, supabase: FakeSupabase
) -> None:
    supabase.bucket(BUCKET)["public"] = True
    async with serve(settings_factory(files_url=f"supabase://{BUCKET}")) as api:
        response = await api.chatkit(
            tokens.mint(new_user()),
            {"type": "attachments.create", "params": {"name": "a.txt", "size": 3, "mime_type": "text/plain"}},
        )
    assert response.status_code == 503 and "public" in response.json()["detail"]
    assert not supabase.storage_calls("object/upload/sign")


async def test_the_model_sees_an_image_kept_in_storage(api: RunningApp, tokens: Tokens, llm: FakeOpenAIServer) -> None:
    token = tokens.mint(new_user())
    attachment = await create(api, token, "photo.jpg", JPEG, "image/jpeg")
    descriptor = attachment["upload_descriptor"]
    async with httpx.AsyncClient() as browser:
        uploaded = await browser.put(descriptor["url"], content=JPEG, headers=descriptor["headers"])
        assert uploaded.status_code == 200, uploaded.text
    pending = await create(api, token, "later.jpg", JPEG, "image/jpeg")  # never uploaded
    message = user_message("What is this?", [attachment["id"], pending["id"]])
    events = sse_events(await api.chatkit(token, {"type": "threads.create", "params": {"input": message}}))
    assert not [e for e in events if e["type"] == "error"], events
    sent = json.dumps(llm.requests[-1]["messages"])
    assert "data:image/jpeg;base64," + base64.b64encode(JPEG).decode() in sent
    assert "later.jpg" in sent and "not uploaded" in sent
