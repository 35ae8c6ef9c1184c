"""Builders for ChatKit threads, items and attachments, so contract tests stay short.

Every builder takes explicit ids and timestamps: the contract is about exact
round trips and exact order, so nothing here is random.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from chatkit.types import Annotation as SourceAnnotation
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    Attachment,
    ClientToolCallItem,
    CustomSummary,
    CustomTask,
    EndOfTurnItem,
    FileAttachment,
    FileSource,
    HiddenContextItem,
    ImageAttachment,
    InferenceOptions,
    LockedStatus,
    Page,
    SDKHiddenContextItem,
    SearchTask,
    TaskItem,
    ThoughtTask,
    Thread,
    ThreadItem,
    ThreadMetadata,
    ToolChoice,
    URLSource,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WidgetItem,
    Workflow,
    WorkflowItem,
)
from pydantic import AnyUrl, BaseModel

from stores import UserStore

# Fixed instants: a naive one (as ChatKitServer stamps `datetime.now()`), an aware
# UTC one and an aware one with a non-UTC offset, which must keep its offset.
NAIVE = datetime(2024, 5, 17, 9, 30, 15, 123456)
AWARE_UTC = datetime(2024, 5, 17, 9, 30, 15, 654321, tzinfo=UTC)
AWARE_PLUS5 = datetime(2024, 5, 17, 14, 45, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
BASE = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)

TRICKY_TEXT = 'Grüße, naïve café 🧠 — "quotes", \\backslash, {braces}: *stars*\nnew line\ttab'


class RequestContext(BaseModel):
    """The context shape the ChatKit SDK's own tests use."""

    user_id: str


def ctx(user_id: str) -> RequestContext:
    return RequestContext(user_id=user_id)


def at(offset_us: int = 0) -> datetime:
    """BASE plus `offset_us` microseconds."""
    return BASE + timedelta(microseconds=offset_us)


def thread(thread_id: str, created_at: datetime = BASE, *, title: str | None = None) -> ThreadMetadata:
    return ThreadMetadata(id=thread_id, created_at=created_at, title=title)


def rich_thread(thread_id: str, created_at: datetime = NAIVE) -> ThreadMetadata:
    """Metadata using every field, including a non-default status and nested metadata."""
    return ThreadMetadata(
        id=thread_id,
        created_at=created_at,
        title=TRICKY_TEXT,
        status=LockedStatus(reason="read only"),
        allowed_image_domains=["example.com", "cdn.example.org"],
        metadata={"source": "voice", "nested": {"n": 1, "list": [1, 2.5, None, True]}, "unicode": "ü"},
    )


def thread_with_items(thread_id: str, items: list[ThreadItem], created_at: datetime = BASE) -> Thread:
    """A `Thread` as ChatKitServer passes it to `save_thread` on create (items included)."""
    return Thread(id=thread_id, created_at=created_at, title="with items", items=Page(data=items, has_more=False))


def file_attachment(attachment_id: str, thread_id: str | None = None, *, name: str = "notes.pdf") -> FileAttachment:
    return FileAttachment(
        id=attachment_id,
        name=name,
        mime_type="application/pdf",
        thread_id=thread_id,
        metadata={"bytes": 1234, "sha256": "ab" * 32},
    )


def image_attachment(attachment_id: str, thread_id: str | None = None) -> ImageAttachment:
    return ImageAttachment(
        id=attachment_id,
        name="photo.png",
        mime_type="image/png",
        thread_id=thread_id,
        preview_url=AnyUrl("https://files.example.com/preview/photo.png"),
    )


def user_message(
    item_id: str, thread_id: str, created_at: datetime = BASE, *, text: str = "hello", attachments: bool = False
) -> UserMessageItem:
    return UserMessageItem(
        id=item_id,
        thread_id=thread_id,
        created_at=created_at,
        content=[
            UserMessageTextContent(text=text),
            UserMessageTagContent(id="tag_1", text="@Ada", data={"kind": "person", "score": 0.5}, group="people"),
        ],
        attachments=[file_attachment("atc_f1", thread_id), image_attachment("atc_i1", thread_id)]
        if attachments
        else [],
        quoted_text="quoted earlier reply" if attachments else None,
        inference_options=InferenceOptions(tool_choice=ToolChoice(id="search"), model="gpt-test")
        if attachments
        else InferenceOptions(),
    )


def assistant_message(
    item_id: str, thread_id: str, created_at: datetime = BASE, *, text: str = "hi there"
) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=item_id,
        thread_id=thread_id,
        created_at=created_at,
        content=[
            AssistantMessageContent(
                text=text,
                annotations=[
                    SourceAnnotation(source=URLSource(title="Docs", url="https://example.com/a?b=c"), index=3),
                    SourceAnnotation(source=FileSource(title="Notes", filename="notes.pdf", description="p. 2")),
                ],
            ),
            AssistantMessageContent(text="second part"),
        ],
    )


def widget(item_id: str, thread_id: str, created_at: datetime = BASE) -> WidgetItem:
    # validated from JSON-like data, the way a stored widget comes back
    return WidgetItem.model_validate(
        {
            "id": item_id,
            "thread_id": thread_id,
            "created_at": created_at,
            "copy_text": "Weather: sunny",
            "widget": {
                "type": "Card",
                "size": "md",
                "children": [
                    {"type": "Text", "value": "Sunny", "weight": "bold"},
                    {"type": "Text", "value": "24 °C"},
                ],
            },
        }
    )


def workflow(item_id: str, thread_id: str, created_at: datetime = BASE) -> WorkflowItem:
    return WorkflowItem(
        id=item_id,
        thread_id=thread_id,
        created_at=created_at,
        workflow=Workflow(
            type="custom",
            tasks=[
                CustomTask(title="Look up", content="checking", status_indicator="complete"),
                SearchTask(title="Search", queries=["a", "b"], sources=[URLSource(title="S", url="https://s.example")]),
                ThoughtTask(content="thinking…"),
            ],
            summary=CustomSummary(title="Done"),
            expanded=True,
        ),
    )


def task(item_id: str, thread_id: str, created_at: datetime = BASE) -> TaskItem:
    return TaskItem(id=item_id, thread_id=thread_id, created_at=created_at, task=ThoughtTask(content="step"))


def tool_call(item_id: str, thread_id: str, created_at: datetime = BASE) -> ClientToolCallItem:
    return ClientToolCallItem(
        id=item_id,
        thread_id=thread_id,
        created_at=created_at,
        status="completed",
        call_id="call_1",
        name="get_location",
        arguments={"precise": True, "nested": {"x": [1, 2]}},
        output={"lat": 1.5, "lon": -2.25, "label": "ü"},
    )


def hidden_context(item_id: str, thread_id: str, created_at: datetime = BASE) -> HiddenContextItem:
    return HiddenContextItem(
        id=item_id, thread_id=thread_id, created_at=created_at, content={"memories": ["likes tea"], "n": 2}
    )


def sdk_hidden_context(item_id: str, thread_id: str, created_at: datetime = BASE) -> SDKHiddenContextItem:
    return SDKHiddenContextItem(id=item_id, thread_id=thread_id, created_at=created_at, content="previous_response_id")


def end_of_turn(item_id: str, thread_id: str, created_at: datetime = BASE) -> EndOfTurnItem:
    return EndOfTurnItem(id=item_id, thread_id=thread_id, created_at=created_at)


def rich_user_message(item_id: str, thread_id: str, created_at: datetime = BASE) -> UserMessageItem:
    return user_message(item_id, thread_id, created_at, text=TRICKY_TEXT, attachments=True)


ItemFactory = Callable[[str, str, datetime], ThreadItem]

# One builder per item type the installed chatkit offers; names become test ids.
ITEM_FACTORIES: dict[str, ItemFactory] = {
    "user_message": rich_user_message,
    "assistant_message": assistant_message,
    "widget": widget,
    "workflow": workflow,
    "task": task,
    "client_tool_call": tool_call,
    "hidden_context": hidden_context,
    "sdk_hidden_context": sdk_hidden_context,
    "end_of_turn": end_of_turn,
}


def message(index: int, thread_id: str, created_at: datetime) -> ThreadItem:
    """A cheap distinct item for ordering tests."""
    return user_message(f"msg_{index:04d}", thread_id, created_at, text=f"message {index}")


async def all_items(store: UserStore, user_id: str, thread_id: str, order: str = "asc", limit: int = 100) -> list:
    """Every item of a thread, walking pages with `after`."""
    items: list[ThreadItem] = []
    after: str | None = None
    while True:
        page = await store.threads.load_thread_items(thread_id, after, limit, order, ctx(user_id))
        items.extend(page.data)
        if not page.has_more:
            return items
        assert page.after is not None, "has_more without a cursor makes ChatKit loop forever"
        after = page.after


async def all_threads(store: UserStore, user_id: str, order: str = "desc", limit: int = 100) -> list[ThreadMetadata]:
    threads: list[ThreadMetadata] = []
    after: str | None = None
    while True:
        page = await store.threads.load_threads(limit, after, order, ctx(user_id))
        threads.extend(page.data)
        if not page.has_more:
            return threads
        assert page.after is not None, "has_more without a cursor makes ChatKit loop forever"
        after = page.after


async def snapshot(store: UserStore, user_id: str) -> dict[str, Any]:
    """Everything of one user, to prove that calls by someone else changed nothing."""
    return await store.export_user(user_id)


def ids(rows: list[Any]) -> list[str]:
    return [row.id for row in rows]


def attachment_equal(store: UserStore, loaded: Attachment, saved: Attachment) -> bool:
    """Exact equality, except a preview URL the store regenerates when file storage is configured."""
    if store.threads.files is not None and isinstance(saved, ImageAttachment):
        return loaded.model_dump(exclude={"preview_url"}) == saved.model_dump(exclude={"preview_url"})
    return loaded == saved
