"""Hypothesis throws request bodies at POST /chatkit as one user while another user's data sits in the store.

Bodies are well-formed ChatKit requests naming the other user's thread, item and
attachment ids (and crafted variants of them), the attacker's own ids, random
JSON, wrong types, raw bytes and oversized strings. Every answer must be one of the
documented statuses (200 stream or JSON, 400 malformed, 404 not found, 413 too
large, 501 unsupported) -- never a 500 or a dropped connection -- and no answer
may carry the victim's data. Afterwards the victim's data is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http.conftest import RunningApp, Tokens, new_user, user_message

CANARY = "canary-9d41-victim"
DOCUMENTED = {200, 400, 404, 413, 501}
BODY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
REQUEST_TYPES = [
    "threads.get_by_id", "threads.create", "threads.list", "threads.add_user_message",
    "threads.add_client_tool_output", "threads.add_structured_input", "threads.custom_action",
    "threads.sync_custom_action", "threads.retry_after_item", "items.feedback", "items.list",
    "attachments.create", "attachments.delete", "threads.update", "threads.delete", "input.transcribe",
]  # fmt: skip
_FRAGMENTS = [":", "*", "{", "}", "..", "/", "%00", "\x00", " ", "\n", "é", "'", '"', "\\", "?", "#", "%"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def crafted(owned: list[str]) -> st.SearchStrategy[str]:
    """Real ids (of either user) and ids built to look like them or to break a key scheme."""
    real = st.sampled_from(owned)
    return st.one_of(
        real,
        real,
        real,
        st.builds(lambda i, f: i + f, real, st.sampled_from(_FRAGMENTS)),
        st.builds(lambda i, f: f + i, real, st.sampled_from(_FRAGMENTS)),
        real.map(str.upper),
        real.map(lambda i: i + "x" * 5000),
        st.text(max_size=40),
        st.sampled_from(["*", "", "thr_*", "../../etc/passwd", "%", "None", "null"]),
    )


def requests(ids: list[str]) -> st.SearchStrategy[Any]:
    """Valid ChatKit requests over crafted ids, the same with wrong-typed values, random JSON and bytes."""
    some_id = crafted(ids)
    text = st.one_of(st.text(max_size=60), st.just("x" * 300_000))  # the latter exceeds the request limit
    message = st.builds(user_message, text, st.lists(some_id, max_size=2))
    page = {"limit": st.none() | st.integers(-(2**40), 2**40), "order": st.sampled_from(["asc", "desc", "sideways"])}
    fields: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "threads.get_by_id": {"thread_id": some_id},
        "threads.create": {"input": message},
        "threads.list": {**page, "after": st.none() | some_id},
        "threads.add_user_message": {"thread_id": some_id, "input": message},
        "threads.retry_after_item": {"thread_id": some_id, "item_id": some_id},
        "items.list": {"thread_id": some_id, **page, "after": st.none() | some_id},
        "items.feedback": {
            "thread_id": some_id,
            "item_ids": st.lists(some_id, max_size=3),
            "kind": st.sampled_from(["positive", "negative", "meh"]),
        },
        "attachments.create": {
            "name": st.text(min_size=1, max_size=20),
            "size": st.integers(-1, 2**40),
            "mime_type": st.sampled_from(["text/plain", "image/png", "application/x-evil", ""]),
        },
        "attachments.delete": {"attachment_id": some_id},
        "threads.update": {"thread_id": some_id, "title": text},
        "threads.delete": {"thread_id": some_id},
        "threads.add_client_tool_output": {"thread_id": some_id, "result": json_values},
        "threads.custom_action": {
            "thread_id": some_id,
            "item_id": st.none() | some_id,
            "action": st.fixed_dictionaries({"type": st.text(max_size=10), "payload": json_values}),
        },
        "input.transcribe": {"audio_base64": st.text(max_size=20), "mime_type": st.just("audio/webm")},
    }
    valid = st.one_of(
        *(
            st.fixed_dictionaries({"type": st.just(kind), "params": st.fixed_dictionaries(f)})
            for kind, f in fields.items()
        )
    )
    wrong_types = st.fixed_dictionaries(
        {
            "type": st.sampled_from(REQUEST_TYPES),
            "params": st.dictionaries(st.sampled_from(sorted({k for f in fields.values() for k in f})), json_values),
        }
    )
    return st.one_of(valid, valid, valid, wrong_types, json_values, st.binary(max_size=200))


async def _post(api: RunningApp, token: str, body: Any) -> httpx.Response:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await api.chatkit(token, payload)


async def _seed_victim(api: RunningApp, tokens: Tokens) -> tuple[str, dict[str, str]]:
    victim = new_user()
    token = tokens.mint(victim)
    created = await _post(api, token, {"type": "threads.create", "params": {"input": user_message(CANARY)}})
    assert created.status_code == 200, created.text
    [thread] = (await _post(api, token, {"type": "threads.list", "params": {}})).json()["data"]
    items = (await _post(api, token, {"type": "items.list", "params": {"thread_id": thread["id"]}})).json()["data"]
    rename = {"type": "threads.update", "params": {"thread_id": thread["id"], "title": CANARY}}
    assert (await _post(api, token, rename)).status_code == 200
    attachment = {
        "type": "attachments.create",
        "params": {"name": f"{CANARY}.txt", "size": 5, "mime_type": "text/plain"},
    }
    file = (await _post(api, token, attachment)).json()
    await api.services.store.memories.remember(victim, "fact", "secret", CANARY)
    return token, {"thread": thread["id"], "item": items[0]["id"], "attachment": file["id"]}


async def _victim_view(api: RunningApp, token: str, ids: dict[str, str]) -> str:
    """What the victim sees of their data (minus the export's timestamp and freshly signed upload links)."""
    thread = await _post(api, token, {"type": "threads.get_by_id", "params": {"thread_id": ids["thread"]}})
    items = await _post(api, token, {"type": "items.list", "params": {"thread_id": ids["thread"], "order": "asc"}})
    export = await api.client.get("/me/export", headers=api.auth(token))
    assert thread.status_code == items.status_code == export.status_code == 200
    data = export.json()
    data.pop("exported_at")
    for attachment in data["attachments"]:
        attachment.pop("upload_descriptor", None)
    return "\n".join([thread.text, items.text, json.dumps(data, sort_keys=True)])


@dataclass
class Scene:
    """The victim's data, the attacker's token, and which statuses the bodies produced."""

    victim_token: str
    victim_ids: dict[str, str]
    victim_view: str
    attacker_token: str
    ids: list[str]
    seen: set[int] = field(default_factory=set)


@pytest.fixture
async def scene(api: RunningApp, tokens: Tokens) -> AsyncIterator[Scene]:
    victim_token, victim_ids = await _seed_victim(api, tokens)
    view = await _victim_view(api, victim_token, victim_ids)
    assert view.count(CANARY) >= 3
    attacker_token = tokens.mint(new_user())
    own = await _post(api, attacker_token, {"type": "threads.create", "params": {"input": user_message("mine")}})
    assert own.status_code == 200
    [own_thread] = (await _post(api, attacker_token, {"type": "threads.list", "params": {}})).json()["data"]
    scene = Scene(victim_token, victim_ids, view, attacker_token, [*victim_ids.values(), own_thread["id"]])
    yield scene
    assert await _victim_view(api, victim_token, victim_ids) == view
    assert {200, 400, 404} <= scene.seen, f"the bodies never reached some paths: {scene.seen}"


@pytest.mark.slow
@BODY_SETTINGS
@given(body=st.data())
async def test_any_chatkit_body_gets_a_documented_answer_and_no_other_users_data(
    api: RunningApp, scene: Scene, body: st.DataObject
) -> None:
    request = body.draw(requests(scene.ids), label="body")
    response = await _post(api, scene.attacker_token, request)  # a dropped connection raises here
    assert response.status_code in DOCUMENTED, (response.status_code, response.text[:500])
    assert CANARY not in response.text, response.text[:500]
    if response.status_code != 200:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail and "Traceback" not in detail
    scene.seen.add(response.status_code)
    if response.status_code == 200:  # only a request that succeeded could have changed something
        assert await _victim_view(api, scene.victim_token, scene.victim_ids) == scene.victim_view
