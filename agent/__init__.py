"""The LiveKit side: `MemoryAgent`, the worker entrypoint and the voice transcript writer."""

from agent.memory_agent import MemoryAgent
from agent.transcript import VoiceTranscript

__all__ = ["MemoryAgent", "VoiceTranscript"]
