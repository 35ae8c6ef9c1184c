"""Context and id validation: every crafted id is a ValueError raised before any storage call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from chatkit.types import AttachmentCreateParams

from stores import MemoryStore, ProfileStore, ThreadStore, UserStore
from tests.contract import factories as f

BAD_OBJECT_IDS = [
    "",
    " ",
    "t1:*",
    "t1:",
    "{t1}",
    "t1}",
    "t1*",
    "..",
    "../t1",
    "t1/x",
    "t1\n",
    "t1\r\nDEL x",
    "t1\x00",
    "thrü",
    "t 1",
    "t1'--",
    "x" * 129,
    "x" * 10_000,
]
BAD_USER_IDS = [
    "",
    " ",
    ".",
    "..",
    "a}",
    "{a}",
    "a:*",
    "*",
    "a/b",
    "../a",
    "a\n",
    "a\x00",
    "ü",
    "a b",
    "a'--",
    "x" * 129,
    "x" * 10_000,
    None,
    123,
]
VALID_EDGE_USER_IDS = ["a", "x" * 128, "A.b_c-d@e", "0"]


@pytest.fixture
def no_io(store: UserStore) -> Iterator[list[str]]:
    """Replace every backend primitive with a spy that fails the test if it is reached."""
    reached: list[str] = []

    def spy(name: str) -> Callable[..., Awaitable[Any]]:
        async def primitive(*args: Any, **kwargs: Any) -> Any:
            reached.append(name)
            raise AssertionError(f"{name} reached with unvalidated input")

        return primitive

    facets = [(store.threads, ThreadStore), (store.memories, MemoryStore), (store.profiles, ProfileStore)]
    for facet, base in facets:
        for name in base.__abstractmethods__:
            setattr(facet, name, spy(name))
    setattr(store, "_forget_user", spy("_forget_user"))  # noqa: B010
    yield reached
    for facet, base in facets:
        for name in base.__abstractmethods__:
            delattr(facet, name)
    delattr(store, "_forget_user")


def _thread_calls(store: UserStore, context: Any, bad: str) -> list[Callable[[], Awaitable[Any]]]:
    """Every ThreadStore method with `bad` in one id position (the others valid)."""
    t = store.threads
    return [
        lambda: t.load_thread(bad, context),
        lambda: t.save_thread(f.thread(bad), context),
        lambda: t.delete_thread(bad, context),
        lambda: t.load_thread_items(bad, None, 20, "asc", context),
        lambda: t.load_thread_items("thr_1", bad, 20, "asc", context),
        lambda: t.load_threads(20, bad, "desc", context),
        lambda: t.add_thread_item(bad, f.message(1, "thr_1", f.BASE), context),
        lambda: t.add_thread_item("thr_1", f.user_message(bad, "thr_1"), context),
        lambda: t.save_item(bad, f.message(1, "thr_1", f.BASE), context),
        lambda: t.save_item("thr_1", f.user_message(bad, "thr_1"), context),
        lambda: t.load_item(bad, "msg_1", context),
        lambda: t.load_item("thr_1", bad, context),
        lambda: t.delete_thread_item(bad, "msg_1", context),
        lambda: t.delete_thread_item("thr_1", bad, context),
        lambda: t.save_attachment(f.file_attachment(bad), context),
        lambda: t.save_attachment(f.file_attachment("atc_1", bad), context),
        lambda: t.load_attachment(bad, context),
        lambda: t.delete_attachment(bad, context),
    ]


def _user_calls(store: UserStore, bad: Any) -> list[Callable[[], Awaitable[Any]]]:
    m, p = store.memories, store.profiles
    return [
        lambda: m.remember(bad, "preference", "colour", "teal"),
        lambda: m.get(bad, "preference", "colour"),
        lambda: m.list(bad),
        lambda: m.search(bad, "colour"),
        lambda: m.forget(bad, "preference", "colour"),
        lambda: p.ensure(bad),
        lambda: p.get(bad),
        lambda: store.export_user(bad),
        lambda: store.forget_user(bad),
        *_thread_calls(store, {"user_id": bad}, "thr_ok"),
    ]


@pytest.mark.parametrize("bad", BAD_OBJECT_IDS, ids=repr)
async def test_crafted_object_ids_rejected_before_io(store: UserStore, user_a: str, no_io: list[str], bad: str) -> None:
    for call in _thread_calls(store, f.ctx(user_a), bad):
        with pytest.raises(ValueError):
            await call()
    assert no_io == []


@pytest.mark.parametrize("bad", BAD_USER_IDS, ids=repr)
async def test_crafted_user_ids_rejected_before_io(store: UserStore, no_io: list[str], bad: Any) -> None:
    for call in _user_calls(store, bad):
        with pytest.raises(ValueError):
            await call()
    assert no_io == []


async def test_crafted_ids_cannot_reach_existing_data(store: UserStore) -> None:
    await store.threads.save_thread(f.thread("t1", title="a's"), f.ctx("a"))
    await store.threads.add_thread_item("t1", f.message(1, "t1", f.BASE), f.ctx("a"))
    await store.memories.remember("a", "preference", "colour", "teal")
    before = await store.export_user("a")

    for user in ("a}", "{a}", "a:*", "*", "a\n", "a/", "../a"):
        for call in _user_calls(store, user):
            with pytest.raises(ValueError):
                await call()
    for thread in ("t1:*", "t1*", "t1}", "{t1}", "t1\n", "t1/", "../t1"):
        for call in _thread_calls(store, f.ctx("a"), thread):
            with pytest.raises(ValueError):
                await call()

    assert await store.export_user("a") == before


@pytest.mark.parametrize("user_id", VALID_EDGE_USER_IDS)
async def test_edge_user_ids_are_accepted(store: UserStore, user_id: str) -> None:
    await store.threads.save_thread(f.thread("x" * 128), f.ctx(user_id))
    await store.threads.add_thread_item("x" * 128, f.user_message("i" * 128, "x" * 128), f.ctx(user_id))

    assert f.ids(await f.all_items(store, user_id, "x" * 128)) == ["i" * 128]
    assert (await store.memories.remember(user_id, "fact", "k", "v")).user_id == user_id


NO_USER_CONTEXTS = [
    None,
    {},
    {"user": "a"},
    {"user_id": None},
    {"user_id": ""},
    {"user_id": 42},
    object(),
    SimpleNamespace(user_id=None),
    SimpleNamespace(user_id=""),
    SimpleNamespace(id="a"),
    "a",
]


@pytest.mark.parametrize("context", NO_USER_CONTEXTS, ids=repr)
async def test_context_without_user_is_rejected(store: UserStore, no_io: list[str], context: Any) -> None:
    for call in _thread_calls(store, context, "thr_1"):
        with pytest.raises(ValueError):
            await call()
    with pytest.raises(ValueError):
        await store.threads.create_attachment(
            AttachmentCreateParams(name="a.txt", size=3, mime_type="text/plain"), context
        )
    assert no_io == []


async def test_context_forms_name_the_same_user(store: UserStore, user_a: str) -> None:
    await store.threads.save_thread(f.thread("thr_1", title="mine"), f.ctx(user_a))  # pydantic model

    for context in ({"user_id": user_a}, SimpleNamespace(user_id=user_a), f.RequestContext(user_id=user_a)):
        assert (await store.threads.load_thread("thr_1", context)).title == "mine"
