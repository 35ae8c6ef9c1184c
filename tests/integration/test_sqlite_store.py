"""The SQLite backend beyond the shared contract: the file, restarts, locking, schema.

Everything runs against real database files in the test's temporary directory;
restarts are real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    FileAttachment,
    HiddenContextItem,
    InferenceOptions,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)

from memory.settings import get_settings
from stores import StoreError, StoreUnavailableError, UserStore, open_store
from stores.errors import StoreClosedError
from stores.sqlite.schema import MIGRATIONS
from stores.sqlite.threads import _PAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
USER = "6f1c2a4e-0b7d-5c55-9e1e-3f0a9b7c1d21"
OTHER = "0d9e8f7a-6b5c-5d4e-8f3a-2b1c0d9e8f7a"
NAIVE = datetime(2024, 5, 17, 9, 30, 15, 123456)  # ChatKit stamps naive local time


# -- sample data, built the same way in the test and in the writer process ------
def sample_threads() -> list[ThreadMetadata]:
    return [
        ThreadMetadata(id="thr_voice", created_at=NAIVE, title="Grüße 🧠", metadata={"source": "voice"}),
        ThreadMetadata(id="thr_chat", created_at=NAIVE, title="same timestamp, inserted second"),
    ]


def sample_items(thread_id: str) -> list[ThreadItem]:
    return [
        UserMessageItem(
            id=f"msg_{thread_id}_1",
            thread_id=thread_id,
            created_at=NAIVE,
            content=[UserMessageTextContent(text='hello "world"\nline two')],
            attachments=[],
            inference_options=InferenceOptions(model="gpt-test"),
        ),
        AssistantMessageItem(
            id=f"msg_{thread_id}_2",
            thread_id=thread_id,
            created_at=NAIVE + timedelta(microseconds=1),
            content=[AssistantMessageContent(text="hi there")],
        ),
        HiddenContextItem(
            id=f"hc_{thread_id}_3", thread_id=thread_id, created_at=NAIVE + timedelta(seconds=1), content="ctx"
        ),
    ]


def sample_attachment() -> FileAttachment:
    return FileAttachment(id="atc_notes", name="notes.pdf", mime_type="application/pdf", thread_id="thr_voice")


async def write_sample(store: UserStore, user_id: str) -> dict[str, Any]:
    """Write threads, items, an attachment, memories and a profile; return what the writer saw."""
    ctx = {"user_id": user_id}
    for thread in sample_threads():
        await store.threads.save_thread(thread, ctx)
        for item in sample_items(thread.id):
            await store.threads.add_thread_item(thread.id, item, ctx)
    await store.threads.save_attachment(sample_attachment(), ctx)
    colour = await store.memories.remember(user_id, "preference", "Favourite Colour", "teal", source="voice")
    await store.memories.remember(user_id, "fact", "city", "Lisbon")
    profile = await store.profiles.ensure(user_id, identity="alice@example.com", email="alice@example.com")
    return {
        "memory": colour.model_dump(mode="json"),
        "profile": profile.model_dump(mode="json"),
        "export": await store.export_user(user_id),
    }


_CHILD = """
import asyncio, json, sys
from stores import open_store
from tests.integration.test_sqlite_store import write_sample

async def main(mode, url, user_id, count):
    async with await open_store(url) as store:
        if mode == "write":
            print(json.dumps(await write_sample(store, user_id)))
        elif mode == "read":
            print(json.dumps(await store.export_user(user_id)))
        elif mode == "burst":
            await asyncio.gather(*(store.memories.remember(user_id, "fact", f"k{i}", f"v{i}") for i in range(count)))
            print(json.dumps({"ok": True}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def run_child(mode: str, url: str, user_id: str, count: int = 0) -> Any:
    """Run the store in a fresh Python process; return the JSON it printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("STORE_URL", None)
    env.pop("STORE_FALLBACK", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        mode,
        url,
        user_id,
        str(count),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the file directly, as another program (or an operator with sqlite3) would."""
    async with aiosqlite.connect(path) as conn:
        return [tuple(row) for row in await conn.execute_fetchall(sql, params)]


def url_for(path: Path, query: str = "") -> str:
    return f"sqlite:///{path}{query}"


# -- restarts -------------------------------------------------------------------
async def test_everything_survives_process_restarts(tmp_path: Path) -> None:
    url = url_for(tmp_path / "restart.db")

    written = await run_child("write", url, USER)
    reread = await run_child("read", url, USER)

    assert reread == written["export"]
    async with await open_store(url) as store:
        ctx = {"user_id": USER}
        assert await store.export_user(USER) == written["export"]
        threads = (await store.threads.load_threads(20, None, "asc", ctx)).data
        assert threads == sample_threads()  # equal timestamps keep insertion order
        for thread in threads:
            page = await store.threads.load_thread_items(thread.id, None, 20, "asc", ctx)
            assert page.data == sample_items(thread.id)  # naive datetimes and hidden context round-trip exactly
        assert await store.threads.load_attachment("atc_notes", ctx) == sample_attachment()

        colour = await store.memories.get(USER, "preference", "favourite colour")
        assert colour is not None and colour.model_dump(mode="json") == written["memory"]
        assert colour.created_at.tzinfo is not None and colour.created_at.utcoffset() == timedelta(0)
        assert colour.created_at == datetime.fromisoformat(written["memory"]["created_at"])  # to the microsecond

        again = await store.profiles.ensure(USER)
        assert again.is_first_login is False  # the first login happened in the first process
        assert again.created_at == datetime.fromisoformat(written["profile"]["created_at"])
        assert written["profile"]["is_first_login"] is True
        assert await store.export_user(OTHER) == {
            "user_id": OTHER,
            "profile": None,
            "memories": [],
            "memory_changes": [],
            "threads": [],
            "attachments": [],
        }


# -- the file and the URL -------------------------------------------------------
async def test_default_url_creates_data_directory_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "data").exists()

    async with await open_store() as store:
        await store.memories.remember(USER, "fact", "city", "Lisbon")
        assert store.url == "sqlite:///./data/memory-agent.db"

    assert (tmp_path / "data" / "memory-agent.db").is_file()
    assert await rows(tmp_path / "data" / "memory-agent.db", "SELECT value FROM memories") == [("Lisbon",)]


async def test_absolute_url_with_four_slashes_and_nested_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "store.db"
    assert url_for(path).startswith("sqlite:////")

    async with await open_store(url_for(path)) as store:
        await store.profiles.ensure(USER)

    assert await rows(path, "SELECT id FROM profiles") == [(USER,)]


async def test_file_uses_wal_and_is_complete_after_close(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = await open_store(url_for(path))
    await store.memories.remember(USER, "fact", "city", "Lisbon")

    assert await rows(path, "PRAGMA journal_mode") == [("wal",)]
    await store.aclose()
    await store.aclose()  # closing twice is harmless

    assert not await asyncio.to_thread(Path(f"{path}-wal").exists)  # checkpointed: the .db file alone holds everything
    assert await rows(path, "SELECT key FROM memories") == [("city",)]


async def test_closing_while_another_process_reads_the_file_is_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers share one file: the one closing first cannot fold the log in, which loses nothing."""
    path = tmp_path / "shared.db"
    store = await open_store(url_for(path))
    await store.memories.remember(USER, "fact", "city", "Lisbon")
    reader = sqlite3.connect(path)  # another worker, in the middle of a read
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT value FROM memories").fetchall() == [("Lisbon",)]
        await store.aclose()
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
        reader.execute("COMMIT")
    finally:
        reader.close()
    async with await open_store(url_for(path)) as again:  # the data was never at risk
        assert (await again.memories.get(USER, "fact", "city")) is not None


async def test_every_commit_is_fsynced_before_it_is_acknowledged(tmp_path: Path) -> None:
    """synchronous=FULL: an acknowledged write survives an OS crash or power cut, not just a process crash."""
    async with await open_store(url_for(tmp_path / "durable.db")) as store:
        writer = store._db._writer  # type: ignore[attr-defined]
        assert list(await writer.execute_fetchall("PRAGMA synchronous")) == [(2,)]  # 2 = FULL
        assert list(await writer.execute_fetchall("PRAGMA journal_mode")) == [("wal",)]


async def test_closed_store_says_so(tmp_path: Path) -> None:
    store = await open_store(url_for(tmp_path / "closed.db"))
    await store.aclose()

    with pytest.raises(StoreClosedError, match="closed; open a new one with open_store"):
        await store.memories.list(USER)
    with pytest.raises(StoreClosedError, match="closed; open a new one with open_store"):
        await store.profiles.ensure(USER)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://somehost/data.db",
        "sqlite:///:memory:",
        "sqlite:///",
        "sqlite:///data/",
        "sqlite:///data.db?mode=ro",
        "sqlite:///data.db?busy_timeout_ms=soon",
    ],
)
async def test_malformed_urls_are_rejected_with_the_right_form(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite|memory://|busy_timeout_ms"):
        await open_store(url)
    assert list(Path.cwd().iterdir()) == []  # nothing created


@pytest.fixture
def memory_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """STORE_FALLBACK=memory: an outage would fall back, a wrong STORE_URL must still fail."""
    monkeypatch.setenv("STORE_FALLBACK", "memory")
    get_settings.cache_clear()


async def test_path_whose_directory_cannot_be_created_names_the_path(tmp_path: Path, memory_fallback: None) -> None:
    (tmp_path / "blocker").write_text("a regular file where a directory should be")
    target = tmp_path / "blocker" / "sub" / "store.db"

    with pytest.raises(StoreError) as info:
        await open_store(url_for(target))

    message = str(info.value)
    assert str(target) in message and "cannot create the directory" in message
    assert not isinstance(info.value, StoreUnavailableError)  # a wrong STORE_URL, not an outage


@contextlib.contextmanager
def unwritable_directory() -> Iterator[Path]:
    """A directory this process may enter but not write to, for the duration of the block.

    Mode 0555; root ignores modes, so when the tests run as root the effective uid is
    `nobody` meanwhile (all threads, aiosqlite's included, follow seteuid on Linux).
    """
    directory = Path(tempfile.mkdtemp(prefix="memory-agent-readonly-"))
    directory.chmod(0o555)
    as_root = os.geteuid() == 0
    try:
        if as_root:
            os.seteuid(pwd.getpwnam("nobody").pw_uid)
        yield directory
    finally:
        if as_root:
            os.seteuid(0)
        directory.chmod(0o755)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("relative", ["store.db", "sub/dir/store.db"], ids=["file", "directory"])
async def test_location_this_process_may_not_write_is_a_configuration_error(
    relative: str, memory_fallback: None
) -> None:
    settings = get_settings()  # read now: the working directory is not readable as `nobody`
    with unwritable_directory() as directory:
        target = directory / relative
        with pytest.raises(StoreError) as info:
            await open_store(url_for(target), settings=settings)
        created = target.exists()

    assert not isinstance(info.value, StoreUnavailableError)  # never a silent fallback to memory
    assert str(target) in str(info.value) and "may write to" in str(info.value)
    assert not created


async def test_directory_instead_of_file_names_the_path(tmp_path: Path, memory_fallback: None) -> None:
    (tmp_path / "dbdir").mkdir()

    with pytest.raises(StoreError, match="is a directory") as info:
        await open_store(url_for(tmp_path / "dbdir"))

    assert str(tmp_path / "dbdir") in str(info.value)
    assert not isinstance(info.value, StoreUnavailableError)


async def test_file_that_is_not_a_database_names_the_path(tmp_path: Path, memory_fallback: None) -> None:
    path = tmp_path / "notes.txt"
    payload = b"these are my notes, not a database\n" * 200
    path.write_bytes(payload)

    with pytest.raises(StoreError, match="not a database") as info:
        await open_store(url_for(path))

    assert str(path) in str(info.value)
    assert not isinstance(info.value, StoreUnavailableError)
    assert path.read_bytes() == payload  # left untouched


# -- schema and migrations ----------------------------------------------------------
async def test_schema_is_versioned_and_reopening_runs_no_migration(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    async with await open_store(url_for(path)) as store:
        await write_sample(store, USER)
    schema_before = await rows(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    export_before = None

    for _ in range(2):
        async with await open_store(url_for(path)) as store:
            export = await store.export_user(USER)
            export_before = export_before or export
            assert export == export_before and export["threads"]

    assert await rows(path, "SELECT v FROM schema_version") == [(v,) for v in range(1, len(MIGRATIONS) + 1)]
    assert await rows(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema_before
    tables = {name for kind, name, _ in schema_before if kind == "table"} - {"sqlite_stat1"}  # PRAGMA optimize's
    assert tables == {
        "schema_version",
        "threads",
        "items",
        "attachments",
        "memories",
        "profiles",
        "memory_terms",
        "memory_counts",
        "changes",
        "sqlite_sequence",  # the changes table's AUTOINCREMENT counter
        "memory_changes",
    }


async def test_database_from_a_newer_version_is_refused(tmp_path: Path, memory_fallback: None) -> None:
    path = tmp_path / "future.db"
    async with await open_store(url_for(path)):
        pass
    async with aiosqlite.connect(path) as conn:
        await conn.execute("INSERT INTO schema_version (v) VALUES (99)")
        await conn.commit()

    with pytest.raises(StoreError, match="newer") as info:
        await open_store(url_for(path))

    assert str(path) in str(info.value)
    assert await rows(path, "SELECT MAX(v) FROM schema_version") == [(99,)]  # nothing applied or dropped


async def test_pages_are_served_by_user_led_indexes(tmp_path: Path) -> None:
    path = tmp_path / "plans.db"
    async with await open_store(url_for(path)):
        pass
    params = {"user_id": USER, "thread_id": "thr_1", "after": "msg_1", "limit": 21}

    for (table, _, _), sql in _PAGES.items():
        plan = " | ".join(str(row[-1]) for row in await rows(path, f"EXPLAIN QUERY PLAN {sql}", params))  # type: ignore[arg-type]
        assert f"INDEX {table}_order (user_id=?" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


# -- rows really go away --------------------------------------------------------------
async def test_delete_thread_removes_its_rows_only(tmp_path: Path) -> None:
    path = tmp_path / "delete.db"
    async with await open_store(url_for(path)) as store:
        await write_sample(store, USER)
        await write_sample(store, OTHER)

        await store.threads.delete_thread("thr_voice", {"user_id": USER})

    assert await rows(path, "SELECT thread_id, COUNT(*) FROM items WHERE user_id = ? GROUP BY 1", (USER,)) == [
        ("thr_chat", 3)
    ]
    assert await rows(path, "SELECT COUNT(*) FROM attachments WHERE user_id = ?", (USER,)) == [(0,)]
    assert await rows(path, "SELECT COUNT(*) FROM items WHERE user_id = ?", (OTHER,)) == [(6,)]
    assert await rows(path, "SELECT COUNT(*) FROM attachments WHERE user_id = ?", (OTHER,)) == [(1,)]


async def test_forget_user_leaves_no_row_of_that_user(tmp_path: Path) -> None:
    path = tmp_path / "forget.db"
    async with await open_store(url_for(path)) as store:
        await write_sample(store, USER)
        kept = await write_sample(store, OTHER)

        await store.forget_user(USER)

        assert await store.export_user(OTHER) == kept["export"]
    for table, column in [("threads", "user_id"), ("items", "user_id"), ("attachments", "user_id"),
                          ("memories", "user_id"), ("profiles", "id")]:  # fmt: skip
        assert await rows(path, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (USER,)) == [(0,)], table
        assert await rows(path, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (OTHER,)) != [(0,)], table


# -- several connections and processes on one file ----------------------------------
async def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    url = url_for(tmp_path / "shared.db")
    async with await open_store(url) as api, await open_store(url) as agent:
        ctx = {"user_id": USER}
        await agent.threads.save_thread(sample_threads()[0], ctx)
        await agent.threads.add_thread_item("thr_voice", sample_items("thr_voice")[0], ctx)
        await api.memories.remember(USER, "fact", "city", "Lisbon")

        assert (await api.threads.load_thread_items("thr_voice", None, 20, "asc", ctx)).data == [
            sample_items("thr_voice")[0]
        ]
        assert [m.value for m in await agent.memories.list(USER)] == ["Lisbon"]

        await api.threads.delete_thread("thr_voice", ctx)
        assert (await agent.threads.load_threads(20, None, "desc", ctx)).data == []


async def test_burst_from_two_stores_does_not_hit_database_is_locked(tmp_path: Path) -> None:
    url = url_for(tmp_path / "burst.db")
    async with await open_store(url) as one, await open_store(url) as two:
        ctx = {"user_id": USER}
        await one.threads.save_thread(ThreadMetadata(id="thr_burst", created_at=NAIVE), ctx)
        items = [
            AssistantMessageItem(
                id=f"msg_{i:03d}",
                thread_id="thr_burst",
                created_at=NAIVE + timedelta(microseconds=i),
                content=[AssistantMessageContent(text=str(i))],
            )
            for i in range(200)
        ]

        await asyncio.gather(
            *((one if i % 2 else two).threads.add_thread_item("thr_burst", item, ctx) for i, item in enumerate(items)),
            *((two if i % 2 else one).memories.remember(USER, "fact", f"k{i}", f"v{i}") for i in range(200)),
        )

        loaded: list[ThreadItem] = []
        after = None
        while True:
            page = await two.threads.load_thread_items("thr_burst", after, 100, "asc", ctx)
            loaded += page.data
            if not page.has_more:
                break
            after = page.after
        assert loaded == items
        assert len(await one.memories.list(USER)) == 200


async def test_two_processes_write_one_file_at_once(tmp_path: Path) -> None:
    url = url_for(tmp_path / "procs.db")
    async with await open_store(url):  # schema in place, as an already running deployment would have
        pass

    results = await asyncio.gather(run_child("burst", url, USER, 150), run_child("burst", url, OTHER, 150))

    assert results == [{"ok": True}, {"ok": True}]
    async with await open_store(url) as store:
        assert len(await store.memories.list(USER)) == 150
        assert len(await store.memories.list(OTHER)) == 150


async def test_concurrent_first_logins_from_two_stores_create_one_profile(tmp_path: Path) -> None:
    url = url_for(tmp_path / "profiles.db")
    async with await open_store(url) as one, await open_store(url) as two:
        results = await asyncio.gather(
            *((one if i % 2 else two).profiles.ensure(USER, identity="caller") for i in range(100))
        )

    assert sum(p.is_first_login for p in results) == 1
    assert len({p.created_at for p in results}) == 1
    assert await rows(tmp_path / "profiles.db", "SELECT COUNT(*) FROM profiles") == [(1,)]


async def test_a_held_write_lock_gives_a_clear_error_and_reads_still_work(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    async with await open_store(url_for(path, "?busy_timeout_ms=200")) as store:
        await store.memories.remember(USER, "fact", "city", "Lisbon")
        async with aiosqlite.connect(path, isolation_level=None) as other_program:
            await other_program.execute("BEGIN EXCLUSIVE")

            with pytest.raises(StoreUnavailableError, match="locked") as info:
                await store.memories.remember(USER, "fact", "city", "Porto")
            assert str(path) in str(info.value) and "busy_timeout_ms" in str(info.value)
            assert [m.value for m in await store.memories.list(USER)] == ["Lisbon"]  # WAL: readers not blocked

            await other_program.execute("ROLLBACK")
        assert (await store.memories.remember(USER, "fact", "city", "Porto")).value == "Porto"


async def test_cancelled_writes_leave_the_store_usable(tmp_path: Path) -> None:
    async with await open_store(url_for(tmp_path / "cancel.db")) as store:
        ctx = {"user_id": USER}
        await store.threads.save_thread(ThreadMetadata(id="thr_c", created_at=NAIVE), ctx)
        tasks = [
            asyncio.create_task(
                store.threads.add_thread_item(
                    "thr_c",
                    AssistantMessageItem(
                        id=f"msg_{i}", thread_id="thr_c", created_at=NAIVE, content=[AssistantMessageContent(text="x")]
                    ),
                    ctx,
                )
            )
            for i in range(30)
        ]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        memory = await store.memories.remember(USER, "fact", "after", "cancel")
        page = await store.threads.load_thread_items("thr_c", None, 100, "asc", ctx)

        assert memory.value == "cancel"
        ids = [item.id for item in page.data]
        assert len(ids) == len(set(ids)) <= 30  # each write either happened whole or not at all


async def test_memory_times_round_trip_to_the_microsecond_as_utc(tmp_path: Path) -> None:
    async with await open_store(url_for(tmp_path / "times.db")) as store:
        first = await store.memories.remember(USER, "fact", "city", "Lisbon")
        await asyncio.sleep(0.002)
        second = await store.memories.remember(USER, "FACT", "City", "Porto")

        loaded = await store.memories.get(USER, "fact", "city")

    assert loaded == second
    assert (second.id, second.created_at) == (first.id, first.created_at)
    assert second.updated_at > first.updated_at
    assert loaded is not None and loaded.updated_at.tzinfo is UTC
    assert abs(loaded.updated_at - datetime.now(UTC)) < timedelta(seconds=30)
