"""Speech and language models built from settings (OpenAI or any OpenAI-compatible server).

The models are built inside the job, never at import: `openai.LLM()` raises without
a key, and a worker must be importable (for `download-files`, tests, `--help`)
without one. The plugin module itself is imported here, at module import: LiveKit
plugins register themselves and refuse to do so off the main thread, which is where
a lazy import inside the job ran in `console` mode (and it blocked the event loop
for about half a second on the first call).
"""

from __future__ import annotations

from dataclasses import dataclass

from livekit.agents import llm, stt, tts
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.plugins import openai

from memory.settings import Settings

# OpenAI-compatible local servers (Ollama, vLLM ...) accept any key; the client insists on one
PLACEHOLDER_API_KEY = "not-needed"


class MissingModelCredentialsError(RuntimeError):
    """Neither OPENAI_API_KEY nor OPENAI_BASE_URL is set."""


@dataclass
class Models:
    stt: stt.STT
    llm: llm.LLM
    tts: tts.TTS


def model_credentials_problem(settings: Settings) -> str | None:
    """What is missing to reach the models, or None when they can be built."""
    if settings.openai_api_key is None and not settings.openai_base_url:
        return (
            "no model credentials: set OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible "
            "server such as Ollama or vLLM)"
        )
    return None


def build_models(settings: Settings) -> Models:
    """STT, LLM and TTS through livekit-plugins-openai, pointed at OPENAI_BASE_URL when set."""
    problem = model_credentials_problem(settings)
    if problem:
        raise MissingModelCredentialsError(problem)
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else PLACEHOLDER_API_KEY
    base_url: NotGivenOr[str] = settings.openai_base_url or NOT_GIVEN
    return Models(
        stt=openai.STT(model=settings.stt_model, api_key=api_key, base_url=base_url),
        llm=openai.LLM(model=settings.llm_model, api_key=api_key, base_url=base_url),
        tts=openai.TTS(model=settings.tts_model, voice=settings.tts_voice, api_key=api_key, base_url=base_url),
    )
