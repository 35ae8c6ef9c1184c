"""Retention where it runs: on demand from the CLI, and from several processes on one SQLite file at once.

(The periodic sweep inside the API process: tests/http/test_retention_api.py.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stores import open_store
from stores.retention import Sweeper
from tests.http.conftest import new_user

REPO = Path(__file__).resolve().parents[2]


def backdate(path: Path, user_id: str, key: str, days: int) -> None:
    """Make one memory look `days` days old (as if written then): the store has no API for that."""
    old = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE memories SET updated_at = ? WHERE user_id = ? AND key = ?", (old, user_id, key))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stores", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
    )


async def test_cli_sweep_removes_what_expired(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    user = new_user()
    async with await open_store(f"sqlite:///{path}") as store:
        await store.memories.remember(user, "fact", "old", "stale")
        await store.memories.remember(user, "fact", "new", "fresh")
    backdate(path, user, "old", days=40)
    url = f"sqlite:///{path}"

    off = await asyncio.to_thread(_cli, "sweep", url, env={})
    assert off.returncode == 2 and "MEMORY_RETENTION_DAYS" in off.stderr

    done = await asyncio.to_thread(
        _cli, "sweep", url, env={"MEMORY_RETENTION_DAYS": "30", "TRANSCRIPT_RETENTION_DAYS": "30"}
    )
    assert done.returncode == 0, done.stderr
    assert "forgot 1 memories not updated for 30 days" in done.stdout
    assert "deleted 0 voice-call threads older than 30 days" in done.stdout
    async with await open_store(url) as store:
        assert [m.key for m in await store.memories.list(user)] == ["new"]


@pytest.mark.parametrize("processes", [2])
async def test_sweepers_in_several_processes_on_one_file(tmp_path: Path, processes: int) -> None:
    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    user = new_user()
    async with await open_store(url) as store:
        for i in range(60):
            await store.memories.remember(user, "fact", f"k{i}", f"v{i}")
    with sqlite3.connect(path) as conn:
        old = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="microseconds")
        conn.execute("UPDATE memories SET updated_at = ?", (old,))
    env = {"MEMORY_RETENTION_DAYS": "30"}

    runs = await asyncio.gather(*(asyncio.to_thread(_cli, "sweep", url, env=env) for _ in range(processes)))

    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    counts = [int(run.stdout.split("forgot ")[1].split(" ")[0]) for run in runs]
    assert sum(counts) == 60  # each memory forgotten by exactly one process
    async with await open_store(url) as store:
        assert await store.memories.list(user) == []
        forgets = await store.memories.history(user, limit=1000)
        assert sorted(c.key for c in forgets if c.op == "forget") == sorted(f"k{i}" for i in range(60))
        assert (await Sweeper(store, memory_days=30, transcript_days=None).sweep()).memories == 0
