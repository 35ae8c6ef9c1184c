"""The capture model: chat completions in JSON mode on any OpenAI-compatible endpoint.

Configured by OPENAI_BASE_URL, OPENAI_API_KEY and MEMORY_CAPTURE_MODEL. No retries in
the client: the capture worker retries with its own back-off and counts failures.
"""

from __future__ import annotations

import logging
from typing import cast

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from memory.settings import Settings

logger = logging.getLogger("memory_agent.capture")

PLACEHOLDER_API_KEY = "not-needed"  # keyless OpenAI-compatible servers still need some key string


class CaptureClient:
    """Chat completions in JSON mode on any OpenAI-compatible endpoint (OPENAI_BASE_URL)."""

    def __init__(self, settings: Settings) -> None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else PLACEHOLDER_API_KEY
        self.model = settings.memory_capture_model
        self._client = AsyncOpenAI(
            api_key=key, base_url=settings.openai_base_url, max_retries=0, timeout=settings.memory_capture_timeout
        )

    async def complete(self, messages: list[dict[str, str]]) -> str | None:
        """The model's reply content (None if it sent none); raises on transport or HTTP errors."""
        response = await self._client.chat.completions.create(
            model=self.model,
            messages=cast("list[ChatCompletionMessageParam]", messages),
            response_format={"type": "json_object"},
            temperature=0,
        )
        return response.choices[0].message.content if response.choices else None

    async def aclose(self) -> None:
        await self._client.close()


def capture_client(settings: Settings) -> CaptureClient | None:
    """The client for MEMORY_CAPTURE=background, or None (logged) when no endpoint is configured."""
    if settings.memory_capture != "background":
        return None
    if settings.openai_api_key is None and not settings.openai_base_url:
        logger.warning(
            "MEMORY_CAPTURE=background but neither OPENAI_API_KEY nor OPENAI_BASE_URL is set: "
            "nothing will be captured; set one of them (or MEMORY_CAPTURE=tools/off)"
        )
        return None
    return CaptureClient(settings)
