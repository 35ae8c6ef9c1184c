"""SQLite on a full disk (issue 14, item 9): say "disk full", leave no empty file behind, and never
let `aclose()` leave the newest data only in the -wal silently.

A full disk is real here: a small tmpfs mounted for the test (needs root; skipped otherwise).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.settings import Settings
from stores import StoreUnavailableError, open_store

SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk; returns the filler file (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def test_opening_a_new_store_on_a_full_disk_says_so_and_leaves_nothing(small_disk: Path) -> None:
    fill(small_disk)
    path = small_disk / "new.db"
    with pytest.raises(StoreUnavailableError, match=r"disk holding .* is full") as caught:
        await open_store(f"sqlite:///{path}", settings=Settings())
    assert "names a memory-agent database" not in str(caught.value)
    assert not [name for name in os.listdir(small_disk) if name.startswith("new.db")]


async def test_opening_a_healthy_store_on_a_full_disk_says_disk_full(small_disk: Path) -> None:
    path = small_disk / "store.db"
    async with await open_store(f"sqlite:///{path}", settings=Settings()) as store:
        await store.memories.remember("u1", "fact", "k", "kept")
    filler = fill(small_disk)
    with pytest.raises(StoreUnavailableError, match=r"disk holding .* is full"):
        async with await open_store(f"sqlite:///{path}", settings=Settings()) as store:
            await store.memories.remember("u1", "fact", "k2", "v" * 1000)
    filler.unlink()
    async with await open_store(f"sqlite:///{path}", settings=Settings()) as store:
        memory = await store.memories.get("u1", "fact", "k")
        assert memory is not None and memory.value == "kept"


async def test_a_checkpoint_that_fails_on_close_is_logged_and_nothing_is_lost(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = small_disk / "store.db"
    user = str(uuid.uuid4())
    store = await open_store(f"sqlite:///{path}", settings=Settings())
    for i in range(40):  # the WAL grows; the .db must grow too when it is checkpointed
        await store.memories.remember(user, "fact", f"key {i}", f"value {i} " + "x" * 1500)
    filler = fill(small_disk)
    with caplog.at_level(logging.ERROR):
        await store.aclose()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "-wal" in r.getMessage()]
    assert len(errors) == 1, caplog.text
    assert "full" in errors[0] and "never the .db alone" in errors[0]
    assert wal_size(path) > 0  # the data is there...

    filler.unlink()  # ...and comes back once there is room
    async with await open_store(f"sqlite:///{path}", settings=Settings()) as reopened:
        assert len(await reopened.memories.list(user)) == 40
    assert wal_size(path) == 0
