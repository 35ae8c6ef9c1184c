"""A mock LiveKit room with one remote participant of a chosen identity (no server needed).

Same recipe as `livekit.agents.ipc.mock_room.create_mock_room`, which is cached and
always has the identity `mock_user`; tests need many callers. `MagicMock(spec=...)`
(async methods become AsyncMock) instead of `create_autospec`, which costs ~0.2 s a room.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, MagicMock

from livekit import rtc


def make_mock_room(identity: str = "mock_user", name: str = "test-room") -> Any:
    """A connected mock `rtc.Room` whose only remote participant has `identity`."""
    room = MagicMock(spec=rtc.Room)
    room.local_participant = MagicMock(spec=rtc.LocalParticipant)
    room.local_participant.sid = ""
    room.local_participant.identity = "agent"
    room._info = MagicMock(spec=rtc.room.proto_room.RoomInfo)
    room.isconnected.return_value = True
    room.name = name
    room.metadata = ""
    room.num_participants = 2
    room.num_publishers = 2
    room.connection_state = rtc.ConnectionState.CONN_CONNECTED
    room.departure_timeout = 0
    room.empty_timeout = 0
    room.sid = AsyncMock(return_value="RM_mock_sid")
    participant = MagicMock(spec=rtc.RemoteParticipant)
    participant.identity = identity
    participant.sid = "PA_" + "".join(ch for ch in identity if ch.isalnum())[:20]
    participant.kind = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    participant.state = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
    participant.attributes = {}
    room.remote_participants = {participant.sid: participant}
    return room
