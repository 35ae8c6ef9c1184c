"""Retention runs periodically inside the API process (started and stopped with the app)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from memory.settings import Settings
from stores import open_store
from tests.http.conftest import new_user, serve
from tests.integration.test_retention_runs import backdate


async def test_the_api_process_sweeps_periodically(tmp_path: Path, settings_factory: Callable[..., Settings]) -> None:
    path = tmp_path / "retention.db"
    user = new_user()
    async with await open_store(f"sqlite:///{path}") as store:
        await store.memories.remember(user, "fact", "old", "stale")
        await store.memories.remember(user, "fact", "new", "fresh")
    backdate(path, user, "old", days=10)
    settings = settings_factory(
        store_url=f"sqlite:///{path}", memory_retention_days=7, retention_sweep_interval_seconds=0.2
    )

    async with serve(settings) as api:
        memories = api.services.store.memories
        for _ in range(100):  # polling, not a timing claim: the first sweep runs at start-up
            if [m.key for m in await memories.list(user)] == ["new"]:
                break
            await asyncio.sleep(0.1)
        assert [m.key for m in await memories.list(user)] == ["new"]
        assert (await memories.history(user))[0].source == "retention"
