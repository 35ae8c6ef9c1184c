"""Identity, the session user, the memory model and recall ranking (pure, no I/O)."""

from memory.identity import identity_to_uuid
from memory.models import Memory, Profile
from memory.ranking import rank
from memory.session import (
    UnboundUserError,
    current_user_id,
    get_session_identity,
    get_session_user_uuid,
    set_session_user,
    user_session,
)

__all__ = [
    "Memory",
    "Profile",
    "UnboundUserError",
    "current_user_id",
    "get_session_identity",
    "get_session_user_uuid",
    "identity_to_uuid",
    "rank",
    "set_session_user",
    "user_session",
]
