"""The HTTP fixtures (app under uvicorn on loopback, fake Supabase JWKS, fake OpenAI, token minting) for the
bad-input and log tests here; they are defined once, in tests/http/conftest.py."""

import pytest

from tests.http.conftest import api, keys, llm, settings_factory, supabase, tokens


@pytest.fixture(autouse=True)
def _tools_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault tests script the agent's `remember` tool calls (also in worker subprocesses)."""
    monkeypatch.setenv("MEMORY_CAPTURE", "tools")


__all__ = ["api", "keys", "llm", "settings_factory", "supabase", "tokens"]
