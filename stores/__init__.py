"""One user-keyed store interface, four backends, chosen by URL: see `open_store`."""

from chatkit.store import NotFoundError

from stores.base import MemoryStore, ProfileStore, ThreadStore, UserStore
from stores.errors import StoreError, StoreTimeoutError, StoreUnavailableError, redact_url
from stores.files import FileStorage
from stores.registry import open_store, startup_problem

__all__ = [
    "FileStorage",
    "MemoryStore",
    "NotFoundError",
    "ProfileStore",
    "StoreError",
    "StoreTimeoutError",
    "StoreUnavailableError",
    "ThreadStore",
    "UserStore",
    "open_store",
    "redact_url",
    "startup_problem",
]
