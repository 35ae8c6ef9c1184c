"""Property-based bad input against every backend: only documented errors, never another user's data."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from chatkit.store import NotFoundError
from chatkit.types import AssistantMessageContent, AssistantMessageItem, ThreadMetadata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory import identity_to_uuid
from stores import UserStore

CANARY = "canary-7f3a"
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _near(owner: str) -> st.SearchStrategy[str]:
    """Ids that look like the owner's or a crafted key fragment."""
    fragments = st.sampled_from([":", "{", "}", "*", "..", "/", "\n", "\x00", " ", "é", "?", "%", "'", '"', "\\"])
    return st.one_of(
        st.text(max_size=40),
        st.builds(lambda f, tail: owner + f + tail, fragments, st.text(max_size=5)),
        st.builds(lambda f: f + owner, fragments),
        st.builds(lambda f: "{" + owner + "}" + f, fragments),
        st.just(owner.upper()),
        st.just("*"),
        st.just(owner + "x" * 10_000),
    )


async def _seed_owner(store: UserStore) -> str:
    owner = str(uuid.uuid4())
    context = {"user_id": owner}
    await store.threads.save_thread(ThreadMetadata(id="t1", created_at=datetime.now(), title=CANARY), context)
    await store.threads.add_thread_item(
        "t1",
        AssistantMessageItem(
            id="i1", thread_id="t1", created_at=datetime.now(), content=[AssistantMessageContent(text=CANARY)]
        ),
        context,
    )
    await store.memories.remember(owner, "fact", "secret", CANARY)
    return owner


@given(identity=st.text(max_size=600))
def test_identity_maps_to_a_uuid_or_says_why(identity: str) -> None:
    try:
        mapped = identity_to_uuid(identity)
    except ValueError as exc:
        assert str(exc)
        return
    assert str(uuid.UUID(mapped)) == mapped
    assert identity_to_uuid(identity) == mapped


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(suffix=_near(""), fragment=_near("x"))
async def test_crafted_user_ids_never_reach_another_user(store: UserStore, suffix: str, fragment: str) -> None:
    owner = await _seed_owner(store)
    for attacker in (owner + suffix, fragment, owner[:8] + suffix):
        if attacker == owner:
            continue
        context = {"user_id": attacker}
        with pytest.raises((ValueError, NotFoundError)):
            await store.threads.load_thread("t1", context)
        with pytest.raises((ValueError, NotFoundError)):
            await store.threads.load_item("t1", "i1", context)
        try:
            page = await store.threads.load_threads(100, None, "desc", context)
            items = await store.threads.load_thread_items("t1", None, 100, "asc", context)
            found = await store.memories.search(attacker, CANARY)
            listed = await store.memories.list(attacker)
            exported = await store.export_user(attacker)
        except ValueError:
            continue
        assert page.data == [] and items.data == [] and found == [] and listed == []
        assert CANARY not in str(exported)
    assert (await store.threads.load_thread("t1", {"user_id": owner})).title == CANARY


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(object_id=_near("t1"))
async def test_crafted_object_ids_are_rejected_or_not_found(store: UserStore, object_id: str) -> None:
    owner = await _seed_owner(store)
    context = {"user_id": owner}
    if object_id != "t1":
        with pytest.raises((ValueError, NotFoundError)):
            await store.threads.load_thread(object_id, context)
        with pytest.raises((ValueError, NotFoundError)):
            await store.threads.load_item(object_id, "i1", context)
        with pytest.raises((ValueError, NotFoundError)):
            await store.threads.load_attachment(object_id, context)
        try:
            await store.threads.delete_thread(object_id, context)
            await store.threads.delete_thread_item("t1", object_id, context)
        except ValueError:
            pass
    items = await store.threads.load_thread_items("t1", None, 10, "asc", context)
    assert [item.id for item in items.data] == ["i1"]


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(category=st.text(max_size=40), key=st.text(max_size=140), value=st.text(max_size=2100))
async def test_memory_fields_store_exactly_or_raise_value_error(
    store: UserStore, category: str, key: str, value: str
) -> None:
    user = str(uuid.uuid4())
    try:
        saved = await store.memories.remember(user, category, key, value)
    except ValueError as exc:
        assert str(exc)
        return
    loaded = await store.memories.get(user, category, key)
    assert loaded == saved
    assert saved.value == value.strip()
    assert 1 <= len(saved.value) <= 2000
