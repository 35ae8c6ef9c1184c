"""The HTTP API: `create_app(settings=None) -> FastAPI`; `python -m api` serves it.

`create_app` is imported lazily so `python -m api token ...` starts without loading
the whole chat stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.app import create_app
    from api.context import RequestContext

__all__ = ["RequestContext", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from api.app import create_app

        return create_app
    if name == "RequestContext":
        from api.context import RequestContext

        return RequestContext
    raise AttributeError(f"module 'api' has no attribute {name!r}")
