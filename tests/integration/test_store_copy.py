"""`python -m stores copy`: exact, idempotent, resumable moves between real backends."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from stores import UserStore, copy_cli, open_store
from stores.__main__ import _parser, main
from stores.copy import copy_user
from tests.contract import factories as f


async def _seed_user(store: UserStore, index: int) -> str:
    """A user with a profile, memories with provenance, two threads of items and attachments."""
    user_id = str(uuid.UUID(int=index + 1))
    context = f.ctx(user_id)
    await store.profiles.ensure(user_id, identity=f"caller-{index}", email=f"user{index}@example.com")
    if index % 3 == 0:
        await store.profiles.set_memory_enabled(user_id, False)
    for number in range(2):
        thread_id = f"thr_{index}x{number}"
        await store.threads.save_thread(f.thread(thread_id, f.at(number), title=f"chat {number} of {index}"), context)
        for item in range(3):
            # equal timestamps on purpose: the copy must keep insertion order, not only time order
            when = f.at(100 + item // 2)
            await store.threads.add_thread_item(thread_id, f.message(item, thread_id, when), context)
        await store.threads.save_attachment(f.file_attachment(f"atc_{index}x{number}", thread_id), context)
    await store.memories.remember(
        user_id,
        "preference",
        "drink",
        f"tea number {index}",
        source="chat",
        thread_id=f"thr_{index}x0",
        item_id="msg_0",
    )
    await store.memories.remember(user_id, "fact", "city", "Lisbon", source="voice")
    await store.memories.remember(user_id, "fact", "city", f"Porto {index}", source="api")  # updated: created < updated
    return user_id


async def _seed(url: str, users: int) -> list[str]:
    async with await open_store(url) as store:
        return [await _seed_user(store, index) for index in range(users)]


async def _exports(url: str, users: list[str]) -> dict[str, object]:
    """Each user's export, memory audit trail included."""
    async with await open_store(url) as store:
        return {user_id: await store.export_user(user_id) for user_id in users}


async def _searches(url: str, users: list[str], query: str) -> dict[str, list[str]]:
    """What each user's memory search answers (the destination's search index must be built by the copy)."""
    async with await open_store(url) as store:
        return {user_id: [m.id for m in await store.memories.search(user_id, query)] for user_id in users}


def _copy(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["copy", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sqlite_url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"


@pytest.mark.slow
def test_round_trip_through_every_backend_gives_identical_exports(
    tmp_path: Path, empty_postgres_url: str, redis_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    origin, final = _sqlite_url(tmp_path, "origin.db"), _sqlite_url(tmp_path, "final.db")
    users = asyncio.run(_seed(origin, 200))
    hops = [(origin, empty_postgres_url), (empty_postgres_url, redis_store_url), (redis_store_url, final)]
    for source, destination in hops:
        code, out, err = _copy(capsys, source, destination, "--verify", "--concurrency", "8")
        assert code == 0, err
        assert "copying 200 user(s)" in out and "verified: all 200 user(s)" in out
    expected = asyncio.run(_exports(origin, users))
    first = expected[users[0]]
    assert first["memories"] and first["threads"][0]["items"] and first["memory_changes"]  # type: ignore[index]
    assert asyncio.run(_exports(final, users)) == expected
    assert asyncio.run(_exports(empty_postgres_url, users)) == expected
    assert asyncio.run(_exports(redis_store_url, users)) == expected
    searched = asyncio.run(_searches(origin, users, "which drink does the user like, tea?"))
    assert all(searched.values())
    for url in (empty_postgres_url, redis_store_url, final):
        assert asyncio.run(_searches(url, users, "which drink does the user like, tea?")) == searched

    # a second run finds everything in place and says so
    code, out, err = _copy(capsys, origin, empty_postgres_url)
    assert code == 0, err
    assert "nothing to do: all 200 user(s) are already identical" in out


def test_second_run_changes_nothing_and_later_changes_are_picked_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, destination = _sqlite_url(tmp_path, "a.db"), _sqlite_url(tmp_path, "b.db")
    users = asyncio.run(_seed(source, 3))
    assert _copy(capsys, source, destination)[0] == 0
    code, out, _ = _copy(capsys, source, destination)
    assert code == 0 and "nothing to do: all 3 user(s)" in out

    async def change() -> None:
        async with await open_store(source) as store:
            await store.memories.remember(users[1], "fact", "pet", "a cat called Miso", source="voice")
            await store.threads.add_thread_item("thr_1x1", f.message(7, "thr_1x1", f.at(500)), f.ctx(users[1]))

    asyncio.run(change())
    code, out, _ = _copy(capsys, source, destination, "--user", users[1], "--verify")
    assert code == 0
    assert f"copied user {users[1]}" in out and "memories" in out and "items" in out
    assert asyncio.run(_exports(destination, users)) == asyncio.run(_exports(source, users))


def test_verify_reports_a_difference_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, destination = _sqlite_url(tmp_path, "a.db"), _sqlite_url(tmp_path, "b.db")
    users = asyncio.run(_seed(source, 2))

    async def add_only_there() -> None:  # destination-only data is kept, and verify notices it
        async with await open_store(destination) as store:
            await store.memories.remember(users[0], "fact", "only-here", "kept")

    asyncio.run(add_only_there())
    code, out, err = _copy(capsys, source, destination, "--verify")
    assert code == 1
    assert "1 record(s) exist only on the destination" in out
    assert f"verify: user {users[0]} differs on the destination in: memories" in err
    assert "only-here" in str(asyncio.run(_exports(destination, users[:1])))


def test_attachment_bytes_move_between_file_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, destination = _sqlite_url(tmp_path, "a.db"), _sqlite_url(tmp_path, "b.db")
    (user_id,) = asyncio.run(_seed(source, 1))
    src_files, dst_files = tmp_path / "files-a", tmp_path / "files-b"
    (src_files / user_id).mkdir(parents=True)
    (src_files / user_id / "atc_0x0").write_bytes(b"%PDF-1.7 the notes")
    args = ["--src-files", f"file://{src_files}", "--dst-files", f"file://{dst_files}"]
    code, out, _ = _copy(capsys, source, destination, *args)
    assert code == 0 and "attachment bytes" in out
    assert (dst_files / user_id / "atc_0x0").read_bytes() == b"%PDF-1.7 the notes"
    assert not (dst_files / user_id / "atc_0x1").exists()  # never uploaded: nothing to copy
    code, out, _ = _copy(capsys, source, destination, *args)
    assert code == 0 and "nothing to do" in out


def test_copy_killed_half_way_completes_on_rerun(tmp_path: Path, empty_postgres_url: str) -> None:
    source = _sqlite_url(tmp_path, "a.db")
    users = asyncio.run(_seed(source, 60))
    command = [sys.executable, "-m", "stores", "copy", source, empty_postgres_url, "--concurrency", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    copied = 0
    for line in process.stdout:  # plain log lines: not a terminal
        copied += line.startswith("copied user ")
        if copied == 20:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    partial = asyncio.run(_exports(empty_postgres_url, users))
    assert sum(bool(export["threads"]) for export in partial.values()) < len(users)  # type: ignore[index]

    rerun = subprocess.run([*command, "--verify"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "verified: all 60 user(s)" in rerun.stdout
    assert "already up to date" in rerun.stdout  # the users copied before the kill were skipped
    assert asyncio.run(_exports(empty_postgres_url, users)) == asyncio.run(_exports(source, users))


def test_bad_urls_and_unreachable_servers_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _sqlite_url(tmp_path, "a.db")
    asyncio.run(_seed(source, 1))
    for destination in (
        "ftp://example.com/store",
        "postgresql://app:hunter2-secret@127.0.0.1:1/app",
        "redis://:hunter2-secret@127.0.0.1:1/0",
    ):
        code, out, err = _copy(capsys, source, destination)
        assert code == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert "hunter2-secret" not in out + err
        assert destination.split("://")[0] in err or "127.0.0.1" in err  # it names the destination
    code, _, err = _copy(capsys, source, source)
    assert code == 2 and "the same store" in err
    code, _, err = _copy(capsys, "memory://", source)
    assert code == 2 and "memory://" in err
    code, _, err = _copy(capsys, _sqlite_url(tmp_path, "typo.db"), _sqlite_url(tmp_path, "b.db"))
    assert code == 1 and "typo.db does not exist" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "typo.db").exists()


def test_destination_with_a_newer_schema_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, destination = _sqlite_url(tmp_path, "a.db"), tmp_path / "newer.db"
    asyncio.run(_seed(source, 1))
    with sqlite3.connect(destination) as conn:
        conn.execute("CREATE TABLE schema_version (v INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO schema_version (v) VALUES (999)")
    code, _, err = _copy(capsys, source, f"sqlite:///{destination}")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "newer than this version" in err


def test_newer_postgres_schema_is_refused(
    empty_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def migrate_then_claim_a_newer_version() -> None:
        async with await open_store(empty_postgres_url):
            pass  # migrated
        async with await psycopg.AsyncConnection.connect(empty_postgres_url, autocommit=True) as conn:
            await conn.execute(
                "insert into public.memory_agent_migrations (version, name, checksum) values ('9999', 'future', 'x')"
            )

    asyncio.run(migrate_then_claim_a_newer_version())
    asyncio.run(_seed(_sqlite_url(tmp_path, "a.db"), 1))
    code, _, err = _copy(capsys, _sqlite_url(tmp_path, "a.db"), empty_postgres_url)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "schema version 9999, newer than this memory-agent" in err


async def test_list_users_sees_every_user_with_data(store: UserStore) -> None:
    someone, other = str(uuid.uuid4()), str(uuid.uuid4())
    await store.memories.remember(someone, "fact", "k", "v")
    await store.threads.save_thread(f.thread("thr_only"), f.ctx(other))
    listed = await store.list_users()
    assert {someone, other} <= set(listed) and listed == sorted(set(listed))
    await store.forget_user(someone)
    assert someone not in await store.list_users()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(tmp_path: Path) -> None:
    source, destination = _sqlite_url(tmp_path, "a.db"), _sqlite_url(tmp_path, "b.db")
    asyncio.run(_seed(source, 3))
    args = _parser().parse_args(["copy", source, destination])
    out, terminal = io.StringIO(), _Terminal()
    assert asyncio.run(copy_cli.run(args, out, terminal)) == 0
    assert "\r[" in terminal.getvalue() and "users 3/3" in terminal.getvalue()
    assert "copied user" not in out.getvalue()  # the bar replaces the per-user lines

    out, plain = io.StringIO(), io.StringIO()
    assert (
        asyncio.run(copy_cli.run(_parser().parse_args(["copy", source, _sqlite_url(tmp_path, "c.db")]), out, plain))
        == 0
    )
    assert "\r" not in out.getvalue() + plain.getvalue() and out.getvalue().count("copied user ") == 3


async def test_in_process_stores_copy_exactly_too() -> None:
    """The in-process backend has the same copy primitives (its history included)."""
    source, destination = await open_store("memory://"), await open_store("memory://")
    async with source, destination:
        user_id = await _seed_user(source, 7)
        await source.memories.forget(user_id, "preference", "drink", source="api")
        assert await source.list_users() == [user_id]
        first = await copy_user(source, destination, user_id, None)
        assert first.writes and "memory history" in first.details
        assert await destination.export_user(user_id) == await source.export_user(user_id)
        assert (await copy_user(source, destination, user_id, None)).writes == 0
