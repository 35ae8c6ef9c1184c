"""Fixtures for the agent tests: an in-process store unless a test asks for a backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stores import UserStore, open_store


@pytest.fixture
async def mem_store() -> AsyncIterator[UserStore]:
    async with await open_store("memory://") as store:
        yield store
