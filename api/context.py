"""The ChatKit request context: who is asking. Every store call reads the user from it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestContext(BaseModel):
    """Passed to `ChatKitServer.process`; the store scopes every call by `user_id`."""

    model_config = ConfigDict(frozen=True)

    user_id: str
