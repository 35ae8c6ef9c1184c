"""`python -m agent ...`: missing credentials give a clear message and a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from agent.cli import EXIT_CONFIG, configuration_problems, main
from memory.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "PYTHONPATH": str(REPO)}


async def run_agent_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", *args,
        cwd=os.getcwd(), env={**CLEAN_ENV, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_start_without_credentials_names_what_to_set() -> None:
    code, output = await run_agent_cli("start")
    assert code == EXIT_CONFIG
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "OPENAI_API_KEY"):
        assert name in output


async def test_errors_never_echo_secrets() -> None:
    env = {
        "LIVEKIT_URL": "my-project.livekit.cloud",  # no scheme
        "LIVEKIT_API_KEY": "APIkey123",
        "LIVEKIT_API_SECRET": "lk-secret-value-xyz",
        "OPENAI_API_KEY": "sk-secret-openai-abc",
        "STORE_URL": "mysql://admin:db-password-123@db.example.com/app",
    }
    code, output = await run_agent_cli("dev", env=env)
    assert code == EXIT_CONFIG
    assert "LIVEKIT_URL must start with wss://" in output and "unsupported store URL scheme 'mysql'" in output
    for secret in ("lk-secret-value-xyz", "sk-secret-openai-abc", "db-password-123"):
        assert secret not in output


def test_console_needs_model_credentials_but_no_livekit() -> None:
    problems = configuration_problems("console", Settings(store_url="memory://"))
    assert any("OPENAI_API_KEY" in p for p in problems)
    assert not any("LIVEKIT" in p for p in problems)
    ready = configuration_problems(
        "console", Settings(store_url="memory://", openai_base_url="http://127.0.0.1:11434/v1")
    )
    assert not any("OPENAI" in p for p in ready)


def test_download_files_needs_nothing() -> None:
    assert configuration_problems("download-files", Settings()) == []


def test_start_with_everything_set_has_no_problems() -> None:
    settings = Settings(
        livekit_url="wss://example.livekit.cloud",
        livekit_api_key="key",
        livekit_api_secret="secret",  # type: ignore[arg-type]
        openai_api_key="sk-test",  # type: ignore[arg-type]
        store_url="memory://",
    )
    assert configuration_problems("start", settings) == []


@pytest.mark.parametrize(("argv", "code"), [([], EXIT_CONFIG), (["bogus"], EXIT_CONFIG), (["--help"], 0)])
def test_usage(argv: list[str], code: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    captured = capsys.readouterr()
    assert "python -m agent <command>" in captured.out + captured.err
