"""The HTTP fixtures (app under uvicorn on loopback, fake Supabase JWKS, fake OpenAI, token minting) for the
bad-input and log tests here; they are defined once, in tests/http/conftest.py."""

from tests.http.conftest import api, keys, llm, settings_factory, supabase, tokens

__all__ = ["api", "keys", "llm", "settings_factory", "supabase", "tokens"]
