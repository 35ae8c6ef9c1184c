"""LiveKit habits a newcomer brings (issue 14, item 11): `.env.local`, `--url/--api-key/--api-secret`,
no stale auto-reload promise, and LiveKit's own deprecation notice left visible."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from agent.cli import configuration_problems, livekit_flag_values
from memory.settings import Settings, get_settings
from tests.agent.test_cli import CLEAN_ENV, run_agent_cli
from tests.fixtures.postgres_servers import free_port


def test_env_local_is_read_and_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "AGENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("LIVEKIT_URL=wss://from-dotenv.livekit.cloud\nAGENT_NAME=from-dotenv\n")
    (tmp_path / ".env.local").write_text("LIVEKIT_URL=wss://from-lk-cli.livekit.cloud\nLIVEKIT_API_KEY=APIlocal\n")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.livekit_url == "wss://from-lk-cli.livekit.cloud"
    assert settings.livekit_api_key == "APIlocal"
    assert settings.agent_name == "from-dotenv"
    (tmp_path / ".env").unlink()
    assert Settings().livekit_url == "wss://from-lk-cli.livekit.cloud"


def test_livekit_flags_stand_in_for_the_settings() -> None:
    args = ["start", "--url", "wss://flag.livekit.cloud", "--api-key=APIflag", "--api-secret", "s3cret"]
    values = livekit_flag_values(args)
    settings = Settings(store_url="memory://", openai_api_key="sk-x").model_copy(update=values)  # type: ignore[arg-type]
    assert configuration_problems("start", settings) == []
    assert settings.livekit_api_secret is not None and settings.livekit_api_secret.get_secret_value() == "s3cret"


async def test_help_promises_no_auto_reload_and_names_lk_agent_dev() -> None:
    code, output = await run_agent_cli("--help")
    assert code == 0
    assert "with auto-reload" not in output and "lk agent dev" in output and ".env.local" in output


async def test_start_with_livekit_flags_runs_and_shows_livekit_deprecation_notice(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the worker keeps retrying, which is all this needs
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "start",
        "--url", f"ws://127.0.0.1:{port}", "--api-key", "APIflagkey", "--api-secret", "flag-secret-value-123",
        cwd=tmp_path,
        env={**CLEAN_ENV, "OPENAI_API_KEY": "sk-test-not-real", "STORE_URL": "memory://"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(90):
            while b"built-in Python CLI is deprecated" not in seen or b"127.0.0.1" not in seen:
                chunk = await process.stdout.read(4096)
                if not chunk:
                    break
                seen += chunk
    except TimeoutError:
        pass
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        seen += rest
    output = seen.decode(errors="replace")
    assert "not set" not in output, output  # the flags satisfied the LIVEKIT_* checks
    assert "built-in Python CLI is deprecated" in output, output
    assert "flag-secret-value-123" not in output
    assert os.environ.get("LIVEKIT_API_SECRET") != "flag-secret-value-123"
