"""A representative workload with every logger at DEBUG: no token, key, JWT secret or URL password is ever logged.

The workload: stores opened at password URLs that do not answer, API requests
with a good token and many bad ones, a voice call on a password-protected Redis
that goes away mid-call (so the write-behind logs its retries), and the same call
in a subprocess with DEBUG logging on stderr. Every log record (message, args,
extras, exception text), every error message and every HTTP answer is searched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from memory.settings import Settings
from stores import StoreUnavailableError, open_store
from tests.agent.helpers import call, fake_call
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fixtures.postgres_servers import free_port
from tests.fixtures.redis_servers import RedisServer
from tests.http.conftest import DROP, HS256_SECRET, RunningApp, Tokens, new_user, user_message

REPO = Path(__file__).resolve().parents[2]
STORE_PASSWORD = "store-pw-Zq81x"
REDIS_PASSWORD = "redis-pw-Lk27m"
OPENAI_KEY = "sk-test-not-real"  # what tests/http's settings give the API
SERVICE_KEY = "service-role-key-for-tests"  # the fake Supabase's service role key


def _record_text(record: logging.LogRecord) -> str:
    """Everything a formatter (plain or JSON with extras) could print for this record."""
    parts = [record.getMessage(), repr(record.args)]
    parts += [f"{k}={v!r}" for k, v in record.__dict__.items() if k not in ("msg", "args", "exc_info")]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))  # the traceback a user sees, causes included


async def _unreachable_stores() -> list[str]:
    texts = []
    for url in (
        f"postgresql://app:{STORE_PASSWORD}@127.0.0.1:{free_port()}/app",
        f"redis://:{STORE_PASSWORD}@127.0.0.1:{free_port()}/0",
        f"redis+cluster://:{STORE_PASSWORD}@127.0.0.1:{free_port()}",
        f"postgresql://app@127.0.0.1:{free_port()}/app?password={STORE_PASSWORD}",
    ):
        with pytest.raises(StoreUnavailableError) as caught:
            await open_store(url, settings=Settings(store_connect_timeout=2))
        texts.append(_error_text(caught.value))
    return texts


async def _api_requests(api: RunningApp, tokens: Tokens) -> tuple[list[str], list[str]]:
    user = new_user()
    good = tokens.mint(user)
    bad = [
        tokens.mint(user, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),  # expired
        tokens.mint(user, key=tokens.keys.ec_next, kid=tokens.keys.ec.kid),  # wrong signature
        tokens.mint_hs256(user, secret="not-the-project-secret-but-32-chars-long"),
        tokens.mint_hs256(user, role="anon"),
        tokens.mint(user, aud=DROP),
        tokens.mint(user, sub="not-a-uuid"),
        "garbage.token.value-Hx9",
        SERVICE_KEY,
        HS256_SECRET,
    ]
    answers = []
    for token in [good, *bad]:
        for request in (
            {"type": "threads.create", "params": {"input": user_message("hello")}},
            {"type": "threads.list", "params": {}},
            {"type": "threads.get_by_id", "params": {"thread_id": "thr_missing"}},
        ):
            response = await api.chatkit(token, request)
            assert response.status_code in (200, 401, 404)
            answers.append(response.text)
        answers.append((await api.client.get("/me/export", headers=api.auth(token))).text)
    assert (await api.client.get("/me/export", headers=api.auth(good))).status_code == 200
    return [good, *bad], answers


async def _call_through_an_outage() -> None:
    server = RedisServer(password=REDIS_PASSWORD)
    try:
        await server.astart()
        steps: list[Any] = [["Hi."]]
        for n in range(3):
            steps += [[call("remember", category="fact", key=f"k{n}", value=f"v{n}")], [f"ok {n}"]]
        async with (
            await open_store(server.url) as store,
            fake_call(store, ScriptedLLM(steps), "logs@example.com") as session,
        ):
            await session.run(user_input="remember k0")
            await server.astop()
            await session.run(user_input="remember k1")  # written behind, retried with the URL in the warning
            await asyncio.sleep(0.3)
            await server.astart()
            await session.run(user_input="remember k2")
    finally:
        await asyncio.to_thread(server.close)


async def _call_in_a_subprocess(tmp_path: Path) -> str:
    with RedisServer(password=REDIS_PASSWORD) as server:
        code = (
            "import logging, runpy, sys; logging.basicConfig(level=logging.DEBUG); "
            f"sys.argv = ['call_script', {server.url!r}, 'sub@example.com', 'first']; "
            "runpy.run_module('tests.agent.call_script', run_name='__main__')"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/tmp",
            "PYTHONPATH": str(REPO),
            "OPENAI_API_KEY": OPENAI_KEY,
            "SUPABASE_JWT_SECRET": HS256_SECRET,
            "STORE_URL": server.url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
    text = stderr.decode(errors="replace")
    assert "DEBUG" in text  # the subprocess really logged at DEBUG
    return stdout.decode(errors="replace") + text


@pytest.mark.slow
async def test_no_secret_reaches_a_log_an_error_or_an_answer(
    api: RunningApp, tokens: Tokens, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = await _unreachable_stores()
    sent_tokens, answers = await _api_requests(api, tokens)
    await _call_through_an_outage()
    subprocess_output = await _call_in_a_subprocess(tmp_path)

    assert any("***" in text for text in errors)  # the URLs are named, redacted
    assert any("retrying" in r.getMessage() and ":***@" in r.getMessage() for r in caplog.records)
    assert len(caplog.records) > 100  # DEBUG really was on for the libraries too
    haystacks = {
        "log records": "\n".join(_record_text(record) for record in caplog.records),
        "error messages": "\n".join(errors),
        "HTTP answers": "\n".join(answers),
        "subprocess output": subprocess_output,
    }
    secrets = {
        "store password": STORE_PASSWORD,
        "redis password": REDIS_PASSWORD,
        "JWT secret": HS256_SECRET,
        "service role key": SERVICE_KEY,
        "OpenAI key": OPENAI_KEY,
    }
    for n, token in enumerate(sent_tokens):
        secrets[f"token {n}"] = token
        if token.count(".") == 2:
            secrets[f"signature of token {n}"] = token.rsplit(".", 1)[1]
    for where, text in haystacks.items():
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} appears in the {where}"
