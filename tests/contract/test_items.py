"""Thread items: exact round trips of every item type, upserts that keep position, deletes."""

from __future__ import annotations

import pytest
from chatkit.types import UserMessageItem, WidgetItem
from chatkit.widgets import WidgetTemplate

from stores import NotFoundError, UserStore
from tests.contract import factories as f


@pytest.fixture
async def thread_id(store: UserStore, user_a: str) -> str:
    await store.threads.save_thread(f.thread("thr_items"), f.ctx(user_a))
    return "thr_items"


@pytest.mark.parametrize("created_at", [f.NAIVE, f.AWARE_UTC, f.AWARE_PLUS5], ids=["naive", "utc", "plus0530"])
@pytest.mark.parametrize("kind", list(f.ITEM_FACTORIES))
async def test_item_round_trips_exactly(store: UserStore, user_a: str, thread_id: str, kind: str, created_at) -> None:
    saved = f.ITEM_FACTORIES[kind](f"itm_{kind}", thread_id, created_at)
    await store.threads.add_thread_item(thread_id, saved, f.ctx(user_a))

    loaded = await store.threads.load_item(thread_id, saved.id, f.ctx(user_a))
    paged = (await store.threads.load_thread_items(thread_id, None, 20, "asc", f.ctx(user_a))).data

    assert loaded == saved
    assert loaded.model_dump_json() == saved.model_dump_json()
    assert paged == [saved]
    assert type(paged[0]) is type(saved)


async def test_every_item_type_in_one_thread_keeps_order(store: UserStore, user_a: str, thread_id: str) -> None:
    saved = [build(f"itm_{n}", thread_id, f.at(i)) for i, (n, build) in enumerate(f.ITEM_FACTORIES.items())]
    for item in reversed(saved):  # inserted newest first: order comes from created_at
        await store.threads.add_thread_item(thread_id, item, f.ctx(user_a))

    assert await f.all_items(store, user_a, thread_id, "asc") == saved
    assert await f.all_items(store, user_a, thread_id, "desc", limit=2) == saved[::-1]


async def test_item_text_with_nul_and_astral_characters_round_trips(
    store: UserStore, user_a: str, thread_id: str
) -> None:
    # users can type anything; a NUL byte or an emoji must not break storage (e.g. Postgres jsonb rejects \u0000)
    saved = f.user_message("msg_nul", thread_id, f.NAIVE, text="before\x00after 𝄞 \U0001f600 \u2028 end")
    await store.threads.add_thread_item(thread_id, saved, f.ctx(user_a))

    assert await store.threads.load_item(thread_id, "msg_nul", f.ctx(user_a)) == saved


async def test_add_thread_item_is_an_upsert_that_keeps_position(store: UserStore, user_a: str, thread_id: str) -> None:
    context = f.ctx(user_a)
    for i in range(3):
        await store.threads.add_thread_item(thread_id, f.message(i, thread_id, f.BASE), context)  # equal timestamps

    changed = f.user_message("msg_0000", thread_id, f.BASE, text="edited")
    await store.threads.add_thread_item(thread_id, changed, context)

    items = await f.all_items(store, user_a, thread_id)
    assert f.ids(items) == ["msg_0000", "msg_0001", "msg_0002"]
    assert items[0] == changed
    assert await store.threads.load_item(thread_id, "msg_0000", context) == changed


async def test_re_emitted_workflow_item_does_not_duplicate(store: UserStore, user_a: str, thread_id: str) -> None:
    context = f.ctx(user_a)
    first = f.workflow("wf_1", thread_id, f.at(0))
    await store.threads.add_thread_item(thread_id, first, context)
    await store.threads.add_thread_item(thread_id, f.end_of_turn("eot_1", thread_id, f.at(1)), context)
    expanded = first.model_copy(update={"workflow": first.workflow.model_copy(update={"expanded": False})})

    await store.threads.add_thread_item(thread_id, expanded, context)

    assert await f.all_items(store, user_a, thread_id) == [expanded, f.end_of_turn("eot_1", thread_id, f.at(1))]


async def test_save_item_updates_in_place(store: UserStore, user_a: str, thread_id: str) -> None:
    context = f.ctx(user_a)
    call = f.tool_call("tc_1", thread_id, f.at(0)).model_copy(update={"status": "pending", "output": None})
    await store.threads.add_thread_item(thread_id, call, context)
    await store.threads.add_thread_item(thread_id, f.assistant_message("msg_after", thread_id, f.at(1)), context)

    done = call.model_copy(update={"status": "completed", "output": {"ok": True}})
    await store.threads.save_item(thread_id, done, context)

    items = await f.all_items(store, user_a, thread_id)
    assert f.ids(items) == ["tc_1", "msg_after"]
    assert items[0] == done


async def test_save_item_inserts_when_new(store: UserStore, user_a: str, thread_id: str) -> None:
    item = f.assistant_message("msg_new", thread_id, f.NAIVE)
    await store.threads.save_item(thread_id, item, f.ctx(user_a))

    assert await store.threads.load_item(thread_id, "msg_new", f.ctx(user_a)) == item


async def test_add_item_to_missing_thread_fails_and_creates_nothing(store: UserStore, user_a: str) -> None:
    context = f.ctx(user_a)
    for method in (store.threads.add_thread_item, store.threads.save_item):
        with pytest.raises(NotFoundError):
            await method("thr_nope", f.message(1, "thr_nope", f.BASE), context)

    with pytest.raises(NotFoundError):
        await store.threads.load_thread("thr_nope", context)
    assert await f.all_threads(store, user_a) == []
    # no orphan items waiting for a thread with that id
    await store.threads.save_thread(f.thread("thr_nope"), context)
    assert await f.all_items(store, user_a, "thr_nope") == []


async def test_load_item_missing_raises_not_found(store: UserStore, user_a: str, thread_id: str) -> None:
    with pytest.raises(NotFoundError):
        await store.threads.load_item(thread_id, "msg_missing", f.ctx(user_a))
    with pytest.raises(NotFoundError):
        await store.threads.load_item("thr_missing", "msg_missing", f.ctx(user_a))


async def test_items_are_scoped_to_their_thread(store: UserStore, user_a: str, thread_id: str) -> None:
    context = f.ctx(user_a)
    await store.threads.save_thread(f.thread("thr_other"), context)
    await store.threads.add_thread_item(thread_id, f.message(1, thread_id, f.BASE), context)
    await store.threads.add_thread_item("thr_other", f.message(1, "thr_other", f.BASE), context)  # same item id

    await store.threads.delete_thread_item("thr_other", "msg_0001", context)

    assert (await store.threads.load_item(thread_id, "msg_0001", context)).thread_id == thread_id
    with pytest.raises(NotFoundError):
        await store.threads.load_item("thr_other", "msg_0001", context)


async def test_delete_thread_item_is_scoped_and_idempotent(store: UserStore, user_a: str, thread_id: str) -> None:
    context = f.ctx(user_a)
    for i in range(3):
        await store.threads.add_thread_item(thread_id, f.message(i, thread_id, f.at(i)), context)

    await store.threads.delete_thread_item(thread_id, "msg_0001", context)
    await store.threads.delete_thread_item(thread_id, "msg_0001", context)
    await store.threads.delete_thread_item(thread_id, "msg_missing", context)
    await store.threads.delete_thread_item("thr_missing", "msg_0000", context)

    assert f.ids(await f.all_items(store, user_a, thread_id)) == ["msg_0000", "msg_0002"]
    with pytest.raises(NotFoundError):
        await store.threads.load_item(thread_id, "msg_0001", context)


async def test_user_message_attachments_keep_their_metadata(store: UserStore, user_a: str, thread_id: str) -> None:
    saved = f.rich_user_message("msg_att", thread_id, f.NAIVE)
    await store.threads.add_thread_item(thread_id, saved, f.ctx(user_a))

    loaded = await store.threads.load_item(thread_id, "msg_att", f.ctx(user_a))

    assert isinstance(loaded, UserMessageItem)
    assert loaded.attachments == saved.attachments
    assert loaded.attachments[0].metadata == {"bytes": 1234, "sha256": "ab" * 32}
    assert loaded.inference_options == saved.inference_options
    assert loaded.quoted_text == "quoted earlier reply"


async def test_widget_built_from_a_template_loads_back_the_same_for_the_client(
    store: UserStore, user_a: str, thread_id: str
) -> None:
    # WidgetTemplate.build gives a DynamicWidgetRoot; pydantic loads the stored JSON as the
    # equivalent named widget (Card), so compare what ChatKit sends to the client.
    template = WidgetTemplate(
        {
            "version": "1.0",
            "name": "weather",
            "template": '{"type":"Card","children":[{"type":"Text","value":"{{ summary }}"}]}',
            "jsonSchema": {},
        }
    )
    saved = WidgetItem(
        id="wdg_tpl", thread_id=thread_id, created_at=f.NAIVE, widget=template.build({"summary": "Sunny, 24 °C"})
    )
    await store.threads.add_thread_item(thread_id, saved, f.ctx(user_a))

    loaded = await store.threads.load_item(thread_id, "wdg_tpl", f.ctx(user_a))

    assert loaded.model_dump(mode="json", exclude_none=True) == saved.model_dump(mode="json", exclude_none=True)
