"""Exact (de)serialisation of ChatKit models and the sort keys stores order by.

Items must load back equal to what was saved, naive datetimes included, so every
backend stores pydantic's JSON and sorts on a separate integer key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chatkit.types import Attachment, ThreadItem, ThreadMetadata
from pydantic import TypeAdapter

_ITEM = TypeAdapter(ThreadItem)
_ITEMS = TypeAdapter(list[ThreadItem])
_THREADS = TypeAdapter(list[ThreadMetadata])
_ATTACHMENT = TypeAdapter(Attachment)


def sort_key(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is read as local time (as ChatKit stamps it)."""
    return round(moment.timestamp() * 1_000_000)


def utc_now() -> datetime:
    return datetime.now(UTC)


def dump_thread(thread: ThreadMetadata) -> str:
    """Thread metadata only: a `Thread` with items is reduced to its metadata."""
    fields = {name: getattr(thread, name) for name in ThreadMetadata.model_fields}
    return ThreadMetadata.model_validate(fields).model_dump_json()


def load_thread(data: str | bytes) -> ThreadMetadata:
    return ThreadMetadata.model_validate_json(data)


def dump_item(item: ThreadItem) -> str:
    return _ITEM.dump_json(item).decode()


def load_item(data: str | bytes) -> ThreadItem:
    return _ITEM.validate_json(data)


def load_items(rows: list[str]) -> list[ThreadItem]:
    """A page of items in one validator call (about a third faster than one call per row)."""
    return _ITEMS.validate_json(_array(rows))


def load_threads(rows: list[str]) -> list[ThreadMetadata]:
    """A page of threads in one validator call."""
    return _THREADS.validate_json(_array(rows))


def _array(rows: list[str]) -> str:
    """Rows are whole JSON documents this module wrote, so joining them makes a JSON array."""
    return "[" + ",".join(rows) + "]"


def dump_attachment(attachment: Attachment) -> str:
    return _ATTACHMENT.dump_json(attachment).decode()


def load_attachment(data: str | bytes) -> Attachment:
    return _ATTACHMENT.validate_json(data)
