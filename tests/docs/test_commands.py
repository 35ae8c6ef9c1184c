"""Every command the README and docs/ show is exercised by a test or by CI.

Commands are read from the shell code blocks of README.md and docs/*.md. Each must
match an entry of EXERCISED, which names the test that runs it (that test must
exist) or how this file checks it: pytest selections must collect tests, benchmark
commands must accept the flags shown. A new documented command without an entry
fails here, so documentation cannot drift away from what is tested.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_SHELL_TAGS = {"", "bash", "sh", "shell", "console"}
_ENV_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*=\S*\s+)+")  # `API_DEV_LOGIN=true python -m api`: the command
_COMMAND = re.compile(r"^(bash|python|\.venv/bin/|uv |lk |curl |npm |psql )")

COLLECTED = "collected: test_documented_pytest_selections_collect_tests"
BENCH = "flags: test_documented_benchmarks_accept_their_flags"
EXERCISED: list[tuple[str, str]] = [
    (r"bash scripts/test\.sh", "ci: .ci/run runs it"),
    (
        r"bash scripts/setup\.sh",
        "tests/setup/test_lock.py::test_setup_script_installs_the_lock_and_refuses_a_stale_one",
    ),
    (
        r"bash scripts/run-agent\.sh",
        "tests/docs/test_commands.py::test_run_agent_script_sets_up_and_checks_the_settings",
    ),
    (r"bash scripts/upgrade-deps\.sh", "tests/docs/test_commands.py::test_upgrade_script_relocks_then_runs_the_suite"),
    (r"python -m agent (start|dev)\b", "tests/agent/test_cli.py::test_start_without_credentials_names_what_to_set"),
    (r"python -m agent connect\b", "tests/docs/test_commands.py::test_agent_connect_checks_the_settings"),
    (
        r"python -m agent console\b",
        "tests/agent/test_console_text.py::test_console_text_mode_answers_through_the_model",
    ),
    (r"python -m agent download-files\b", "tests/agent/test_cli.py::test_download_files_needs_nothing"),
    (r"curl .*\$\(python -m api token .*/me/export", "tests/http/test_cli.py::test_dev_token_is_accepted_by_the_api"),
    (
        r"python -m api$",
        "tests/http/test_inspector_page.py::test_the_documented_local_run_serves_the_page_with_the_dev_login",
    ),
    (r"python -m api token\b", "tests/http/test_cli.py::test_dev_token_is_accepted_by_the_api"),
    (r"python -m api( serve)?\b", "tests/http/test_cli.py::test_python_m_api_serves_and_stops_cleanly"),
    (
        r"python -m stores copy\b",
        "tests/integration/test_store_copy.py::test_round_trip_through_every_backend_gives_identical_exports",
    ),
    (
        r"python -m stores migrate\b",
        "tests/integration/test_postgres_migrations.py::test_cli_migrate_prints_what_it_applied",
    ),
    (r"python -m stores sweep\b", "tests/integration/test_retention_runs.py::test_cli_sweep_removes_what_expired"),
    (
        r"python -m stores compact\b",
        "tests/integration/test_redis_compact.py::test_compact_rewrites_the_aof_and_rdb_without_the_erased_user",
    ),
    (r"(\.venv/bin/)?(python -m )?pytest\b|\.venv/bin/python -m pytest\b", COLLECTED),
    (r"(\.venv/bin/)?python -m bench\.", BENCH),
]


def shell_blocks(text: str) -> list[str]:
    """The bodies of fenced blocks tagged bash/sh/shell/console or untagged (pairs fences line by line)."""
    blocks: list[str] = []
    body: list[str] | None = None
    shell = False
    for line in text.splitlines():
        fence = line.strip()
        if body is None and fence.startswith("```"):
            body, shell = [], fence[3:].strip() in _SHELL_TAGS
        elif body is not None and fence == "```":
            if shell:
                blocks.append("\n".join(body))
            body = None
        elif body is not None:
            body.append(line)
    return blocks


def documented_commands() -> list[tuple[str, str]]:
    """(page, command) for every command line in a shell block; continuation lines joined."""
    found: list[tuple[str, str]] = []
    for page in PAGES:
        for block in shell_blocks(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                command = _ENV_PREFIX.sub("", line.split(" #", 1)[0].strip())
                if _COMMAND.match(command):
                    found.append((str(page.relative_to(ROOT)), re.sub(r"\s+", " ", command)))
    return found


def how_exercised(command: str) -> str | None:
    command = command.removeprefix(".venv/bin/") if " -m bench." not in command else command
    for pattern, how in EXERCISED:
        if re.match(pattern, command):
            return how
    return None


COMMANDS = documented_commands()
IDS = [f"{page}: {command[:60]}" for page, command in COMMANDS]


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=IDS)
def test_every_documented_command_is_exercised(page: str, command: str) -> None:
    how = how_exercised(command)
    assert how is not None, f"{page} shows `{command}`, which no test or CI step exercises: add a test and an entry"
    if "::" in how:
        path, name = how.split("::")
        assert re.search(rf"def {re.escape(name)}\b", (ROOT / path).read_text()), f"{how} does not exist"


def test_the_readme_commands_are_found() -> None:
    readme = [command for page, command in COMMANDS if page == "README.md"]
    assert "bash scripts/run-agent.sh dev" in readme and "bash scripts/test.sh" in readme


def _selections() -> list[str]:
    return sorted({c for _, c in COMMANDS if how_exercised(c) == COLLECTED})


def _env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR")
    return {k: v for k, v in os.environ.items() if k in keep} | {"PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("command", _selections())
def test_documented_pytest_selections_collect_tests(command: str) -> None:
    args = shlex.split(command)
    args = args[next(i for i, a in enumerate(args) if a.endswith("pytest")) + 1 :]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    counts = [int(n) for n in re.findall(r"^(\d+) tests? collected|: (\d+)$", result.stdout, re.M) for n in n if n]
    assert sum(counts) > 0 or "::" in result.stdout, f"`{command}` selects no test"


@pytest.mark.parametrize("command", sorted({c for _, c in COMMANDS if how_exercised(c) == BENCH}))
def test_documented_benchmarks_accept_their_flags(command: str) -> None:
    args = shlex.split(command)
    module = args[args.index("-m") + 1]
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in (a.split("=")[0].strip("[]") for a in args if a.lstrip("[").startswith("--")):
        assert flag in result.stdout, f"`{command}`: {module} has no {flag} option"


def test_run_agent_script_sets_up_and_checks_the_settings(tmp_path: Path) -> None:
    """README command 1 on a machine without LiveKit credentials: set-up runs, then a clear exit 2."""
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run-agent.sh"), "dev"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "LIVEKIT_URL" in output and "Traceback" not in output


def test_agent_connect_checks_the_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent", "connect", "--room", "my-room"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "LIVEKIT_URL" in output and "Traceback" not in output


def test_upgrade_script_relocks_then_runs_the_suite() -> None:
    """Running it would re-resolve against the live index (not repeatable in CI): check what it does, in order."""
    script = (ROOT / "scripts" / "upgrade-deps.sh").read_text()
    steps = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    relock = next(i for i, s in enumerate(steps) if '"$UV" lock --upgrade' in s)
    sync = next(i for i, s in enumerate(steps) if '"$UV" sync --locked' in s)
    suite = next(i for i, s in enumerate(steps) if "bash scripts/test.sh" in s)
    assert relock < sync < suite
    assert "git add" not in script and "git commit" not in script  # the new lock is left for review
