"""Fixtures for the agent tests: an in-process store unless a test asks for a backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stores import UserStore, open_store


@pytest.fixture(autouse=True)
def _tools_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent tests written before background capture script `remember`/`forget` tool calls.

    Capture tests pass their own `Settings` (or set MEMORY_CAPTURE again in the test body).
    """
    monkeypatch.setenv("MEMORY_CAPTURE", "tools")


@pytest.fixture
async def mem_store() -> AsyncIterator[UserStore]:
    async with await open_store("memory://") as store:
        yield store
