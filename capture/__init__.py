"""Memory capture off the reply path, shared by the voice agent and the chat API.

The pure rules (pre-filter, consent phrases, request and answer formats) are in
`memory.capture`; this package adds the I/O: the capture model client and the
per-conversation background worker.
"""

from capture.client import CaptureClient, capture_client
from capture.worker import CaptureStats, CaptureTurn, TurnCapture

__all__ = ["CaptureClient", "CaptureStats", "CaptureTurn", "TurnCapture", "capture_client"]
