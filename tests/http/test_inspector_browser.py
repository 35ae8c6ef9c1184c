"""The memory inspector page in a real headless Chromium (Debian's, driven by Playwright), per backend.

The app runs under uvicorn on loopback with API_DEV_LOGIN, so the browser signs in
with one click; what the user does on the page is then checked in the very store
the app uses. Set INSPECTOR_SCREENSHOT=docs/inspector.png to refresh the screenshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import jwt
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from memory.identity import identity_to_uuid
from memory.settings import Settings
from tests.http.conftest import RunningApp, Tokens, new_user, serve
from tests.http.fake_supabase import FakeSupabase
from tests.http.seed import voice_thread

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEV_USER = identity_to_uuid("developer@localhost")
UI_TIMEOUT_MS = 20_000  # generous: the suite shares two cores with Postgres, Redis and other tests

expect.set_options(timeout=UI_TIMEOUT_MS)


def chromium() -> str:
    """The system Chromium (never a Playwright browser download)."""
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if found is None:
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/setup.sh (it installs Debian's chromium)")
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def inspector(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> AsyncIterator[RunningApp]:
    """The app with the dev login on the SQLite, the Postgres or the Redis store."""
    store_url = str(request.getfixturevalue(f"{request.param}_store_url"))
    async with serve(settings_factory(store_url=store_url, api_dev_login=True)) as running:
        await running.services.store.forget_user(DEV_USER)  # the Postgres database is shared by the session
        yield running
        await running.services.store.forget_user(DEV_USER)


async def open_page(browser: Browser, app: RunningApp) -> Page:
    page = await browser.new_page(viewport={"width": 1100, "height": 760}, accept_downloads=True)
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.add_init_script(CSP_WATCH)
    await page.goto(app.base_url + "/")
    await expect(page.locator("body[data-ready=true]")).to_be_attached()
    assert errors == [], errors
    return page


CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
                          (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


async def csp_violations(page: Page) -> list[str]:
    """What the page's Content-Security-Policy blocked (it must block nothing the page needs)."""
    blocked: list[str] = await page.evaluate("window.__csp")
    return blocked


async def sign_in(page: Page) -> None:
    await page.get_by_role("button", name="Sign in as local developer").click()
    await expect(page.get_by_role("tab", name="Memories")).to_be_visible()


async def test_a_user_inspects_corrects_exports_and_deletes_their_memory(
    browser: Browser, inspector: RunningApp, tmp_path: Path
) -> None:
    store = inspector.services.store
    call = await voice_thread(store, DEV_USER, "my sister is Maria", "I'll remember Maria.", thread_id="thr_call1")
    await store.memories.remember(DEV_USER, "relationship", "sister", "Maria", source="voice", thread_id=call)
    await store.memories.remember(DEV_USER, "pet", "dog", "Rex", source="voice", thread_id=call)
    await store.memories.remember(DEV_USER, "preference", "favourite colour", "green", source="chat")
    await store.memories.remember(DEV_USER, "work", "employer", "Acme Rockets", source="voice")
    stranger = identity_to_uuid("stranger@example.com")
    await store.memories.remember(stranger, "work", "employer", "Secret Corp")

    page = await open_page(browser, inspector)
    await sign_in(page)
    groups = page.locator("#memory-groups section")
    await expect(groups).to_have_count(4)
    await expect(groups.locator("h3")).to_have_text(["pet", "preference", "relationship", "work"])
    await expect(page.locator('[data-key="relationship/sister"] .value')).to_have_text("Maria")
    await expect(page.locator('[data-key="work/employer"] .badge')).to_have_text("voice call")
    await expect(page.get_by_text("Secret Corp")).to_have_count(0)
    await expect(page.locator("#who-email")).to_have_text("developer@localhost")

    screenshot = tmp_path / "inspector.png"
    await page.screenshot(path=str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if target := os.environ.get("INSPECTOR_SCREENSHOT"):
        shutil.copy(screenshot, target)

    # correct a value
    sister = page.locator('[data-key="relationship/sister"]')
    await sister.get_by_role("button", name="Edit").click()
    await sister.get_by_label("New value for sister").fill("Maya")
    await sister.get_by_role("button", name="Save").click()
    await expect(page.locator('[data-key="relationship/sister"] .value')).to_have_text("Maya")
    await expect(page.locator('[data-key="relationship/sister"] .badge')).to_have_text("edited by you")
    edited = await store.memories.get(DEV_USER, "relationship", "sister")
    assert edited is not None and (edited.value, edited.source) == ("Maya", "api")

    # forget one
    await page.locator('[data-key="work/employer"]').get_by_role("button", name="Forget").click()
    await expect(page.locator('[data-key="work/employer"]')).to_have_count(0)
    await expect(page.get_by_role("status").first).to_contain_text("Forgot")
    assert await store.memories.get(DEV_USER, "work", "employer") is None
    assert await store.memories.get(stranger, "work", "employer") is not None

    # search
    await page.get_by_label("Search memories").fill("green")
    await expect(page.locator("#memory-groups .memory")).to_have_count(1)
    await expect(page.locator("#memory-groups .memory .value")).to_have_text("green")
    await page.get_by_label("Search memories").fill("")
    await expect(page.locator("#memory-groups .memory")).to_have_count(3)

    # the consent switch
    consent = page.get_by_role("switch", name="Let the agent remember new things about me")
    await expect(consent).to_be_checked()
    await expect(page.get_by_text("Memory is off")).to_be_hidden()
    await consent.click()
    await expect(page.locator("#notice")).to_contain_text("will not remember")
    await expect(page.get_by_text("Memory is off")).to_be_visible()
    profile = await store.profiles.get(DEV_USER)
    assert profile is not None and profile.memory_enabled is False
    await page.reload()
    await expect(page.get_by_role("switch", name="Let the agent remember new things about me")).not_to_be_checked()
    await expect(page.get_by_text("Memory is off")).to_be_visible()
    await expect(page.locator("#memory-groups .memory")).to_have_count(3)

    # follow a memory to the call it was learnt in, and forget everything learnt there
    await page.locator('[data-key="pet/dog"]').get_by_role("button", name="from “Voice call 2026-12-04 10:00”").click()
    await expect(page.get_by_role("tab", name="Conversations")).to_have_attribute("aria-selected", "true")
    await expect(page.locator("#transcript")).to_contain_text("1 memory came from this conversation")
    await page.get_by_role("button", name="Forget what was learnt in this conversation").click()
    await expect(page.locator("#notice")).to_contain_text("Forgot 1 memory")
    assert await store.memories.get(DEV_USER, "pet", "dog") is None
    assert await store.memories.get(DEV_USER, "relationship", "sister") is not None  # edited: now the user's own

    # read and delete the call transcript
    await page.get_by_role("button", name="Voice call 2026-12-04 10:00").click()
    transcript = page.get_by_role("list", name="Transcript")
    await expect(transcript.locator("li")).to_have_text(["Youmy sister is Maria", "AgentI'll remember Maria."])
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete conversation").click()
    await expect(page.locator("#transcript")).to_contain_text("Conversation deleted")
    assert (await store.threads.load_threads(10, None, "asc", {"user_id": DEV_USER})).data == []
    assert call  # the seeded thread existed until the click above

    # export
    await page.get_by_role("tab", name="Account").click()
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download my data").click()
    download = await download_info.value
    assert download.suggested_filename == f"memory-export-{DEV_USER}.json"
    exported = json.loads(await asyncio.to_thread(Path(await download.path()).read_text))
    assert exported["user_id"] == DEV_USER
    assert sorted((m["key"], m["value"]) for m in exported["memories"]) == [
        ("favourite_colour", "green"),
        ("sister", "Maya"),
    ]

    # delete the account, after confirming
    await page.get_by_role("button", name="Delete my account…").click()
    assert len(await store.memories.list(DEV_USER)) == 2  # nothing happens before the confirmation
    await page.get_by_role("button", name="Yes, delete everything").click()
    await expect(page.get_by_role("button", name="Sign in as local developer")).to_be_visible()
    await expect(page.locator("#notice")).to_contain_text("deleted")
    await expect(page.get_by_role("tab", name="Memories")).to_be_hidden()
    after = await store.export_user(DEV_USER)
    assert after["memories"] == [] and after["threads"] == [] and after["profile"] is None
    assert await store.memories.get(stranger, "work", "employer") is not None
    assert await csp_violations(page) == []


async def test_bad_input_shows_the_servers_reason(browser: Browser, inspector: RunningApp) -> None:
    await inspector.services.store.memories.remember(DEV_USER, "relationship", "sister", "Maria")
    page = await open_page(browser, inspector)
    await sign_in(page)
    sister = page.locator('[data-key="relationship/sister"]')
    await sister.get_by_role("button", name="Edit").click()
    await sister.get_by_label("New value for sister").fill("   ")
    await sister.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("alert")).to_contain_text("memory value is empty")
    stored = await inspector.services.store.memories.get(DEV_USER, "relationship", "sister")
    assert stored is not None and stored.value == "Maria"


async def test_voice_call_reports_when_livekit_is_not_configured(browser: Browser, api_dev: RunningApp) -> None:
    page = await open_page(browser, api_dev)
    await sign_in(page)
    await page.get_by_role("tab", name="Voice call").click()
    await expect(page.get_by_role("button", name="Start voice call")).to_be_disabled()
    await expect(page.locator("#call-state")).to_contain_text("LiveKit is not configured")


async def test_voice_call_shows_the_connection_failing(
    browser: Browser, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(
        api_dev_login=True,
        livekit_url="ws://127.0.0.1:9",  # nothing listens: the SDK must report the failure
        livekit_api_key="devkey",
        livekit_api_secret="devsecret-devsecret-devsecret-devsecret",
    )
    async with serve(settings) as app:
        page = await open_page(browser, app)
        await sign_in(page)
        await page.get_by_role("tab", name="Voice call").click()
        await page.get_by_role("button", name="Start voice call").click()
        await expect(page.get_by_role("alert")).to_contain_text("The call could not start", timeout=30_000)
        await expect(page.locator("#call-state")).to_have_text("not connected")
        await expect(page.get_by_role("button", name="Start voice call")).to_be_enabled()


async def test_a_stale_token_sends_the_user_back_to_sign_in(browser: Browser, api_dev: RunningApp) -> None:
    page = await open_page(browser, api_dev)
    await page.evaluate("sessionStorage.setItem('memory-inspector.token', 'not-a-token')")
    await page.reload()
    await expect(page.get_by_role("button", name="Sign in as local developer")).to_be_visible()
    await expect(page.locator("#notice")).to_contain_text("sign in again")


@pytest.fixture
async def api_dev(settings_factory: Callable[..., Settings]) -> AsyncIterator[RunningApp]:
    async with serve(settings_factory(api_dev_login=True)) as running:
        yield running


async def test_production_sign_in_goes_through_supabase_js(
    browser: Browser, settings_factory: Callable[..., Settings], supabase: FakeSupabase, tokens: Tokens
) -> None:
    user = new_user()
    supabase.add_user("erin@example.com", "correct horse", user)
    supabase.issue = lambda user_id, email: tokens.mint(user_id, email=email)  # ES256, checked through the JWKS
    async with serve(settings_factory(supabase_anon_key=supabase.anon_key)) as app:
        await app.services.store.memories.remember(user, "preference", "drink", "oat flat white", source="chat")
        page = await open_page(browser, app)
        await expect(page.get_by_role("button", name="Sign in as local developer")).to_be_hidden()
        await page.get_by_label("Email").fill("erin@example.com")
        await page.get_by_label("Password").fill("wrong")
        await page.get_by_role("button", name="Sign in with Supabase").click()
        await expect(page.get_by_role("alert")).to_contain_text("Invalid login credentials")

        await page.get_by_label("Password").fill("correct horse")
        await page.get_by_role("button", name="Sign in with Supabase").click()
        await expect(page.locator('[data-key="preference/drink"] .value')).to_have_text("oat flat white")
        await expect(page.locator("#who-email")).to_have_text("erin@example.com")
        assert [c.json for c in supabase.calls if c.path.startswith("/auth/v1/token")][-1] == {
            "email": "erin@example.com"
        }
        assert (await app.client.post("/dev-login")).status_code == 404

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("button", name="Sign in with Supabase")).to_be_visible()
        await page.reload()  # the session is gone from the browser, not just hidden
        await expect(page.get_by_role("button", name="Sign in with Supabase")).to_be_visible()
        await expect(page.locator("#memory-groups .memory")).to_have_count(0)
        assert await csp_violations(page) == []  # supabase-js reached Auth on its own origin


# The LiveKit server is a network edge we cannot run here: this scripted stand-in for the SDK's Room
# replays what the real one reports (connection states, `lk.transcription` text streams) to the page.
SCRIPTED_LIVEKIT = """
window.LivekitClient = (() => {
  const RoomEvent = {ConnectionStateChanged: "connectionStateChanged", Disconnected: "disconnected",
                     TrackSubscribed: "trackSubscribed"};
  class Room {
    constructor() { this.handlers = {}; this.streams = {}; this.mic = false; window.__room = this;
                    this.localParticipant = {setMicrophoneEnabled: async (on) => { this.mic = on; }}; }
    on(event, callback) { (this.handlers[event] ||= []).push(callback); return this; }
    emit(event, ...args) { for (const callback of this.handlers[event] || []) callback(...args); }
    registerTextStreamHandler(topic, callback) { this.streams[topic] = callback; }
    async connect(url, token) { this.url = url; this.token = token;
      this.emit(RoomEvent.ConnectionStateChanged, "connecting");
      this.emit(RoomEvent.ConnectionStateChanged, "connected"); }
    disconnect() { this.emit(RoomEvent.ConnectionStateChanged, "disconnected"); this.emit(RoomEvent.Disconnected); }
    transcribe(identity, segment, chunks) {
      const reader = {info: {id: "stream-" + segment, attributes: {"lk.segment_id": segment}},
        async *[Symbol.asyncIterator]() { for (const chunk of chunks) { await new Promise(r => setTimeout(r, 5));
                                                                         yield chunk; } }};
      return this.streams["lk.transcription"](reader, {identity});
    }
  }
  return {Room, RoomEvent};
})();
"""


async def test_a_voice_call_shows_its_state_and_live_transcription(
    browser: Browser, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(
        api_dev_login=True,
        livekit_url="wss://livekit.example.test",
        livekit_api_key="devkey",
        livekit_api_secret="devsecret-devsecret-devsecret-devsecret",
    )
    async with serve(settings) as app:
        page = await browser.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        await page.route(
            "**/inspector/vendor/livekit-client.js",
            lambda route: route.fulfill(body=SCRIPTED_LIVEKIT, content_type="text/javascript"),
        )
        await page.goto(app.base_url + "/")
        await sign_in(page)
        await page.get_by_role("tab", name="Voice call").click()
        await page.get_by_role("button", name="Start voice call").click()
        await expect(page.locator("#call-state")).to_have_text("connected")
        room = await page.evaluate("({url: __room.url, token: __room.token, mic: __room.mic})")
        assert room["url"] == "wss://livekit.example.test" and room["mic"] is True
        claims = jwt.decode(room["token"], options={"verify_signature": False})
        assert claims["sub"] == DEV_USER and claims["video"]["room"] == f"user-{DEV_USER}"

        await page.evaluate(f"__room.transcribe('{DEV_USER}', 'seg-1', ['My sister ', 'is called ', 'Maya.'])")
        await page.evaluate("__room.transcribe('agent-1', 'seg-2', ['Nice to ', 'hear about Maya!'])")
        lines = page.get_by_role("list", name="Live transcription").locator("li")
        await expect(lines).to_have_text(["YouMy sister is called Maya.", "AgentNice to hear about Maya!"])

        # what the agent learns during the call appears in Memories without reloading
        await app.services.store.memories.remember(DEV_USER, "relationship", "sister", "Maya", source="voice")
        await page.get_by_role("tab", name="Memories").click()
        await expect(page.locator('[data-key="relationship/sister"] .value')).to_have_text("Maya")
        await page.get_by_role("tab", name="Voice call").click()

        await page.get_by_role("button", name="End call").click()
        await expect(page.locator("#call-state")).to_have_text("disconnected")
        await expect(page.get_by_role("button", name="Start voice call")).to_be_enabled()
        await expect(page.get_by_role("button", name="End call")).to_be_hidden()


async def test_a_pasted_access_token_signs_in(browser: Browser, api_dev: RunningApp, tokens: Tokens) -> None:
    user = new_user()
    await api_dev.services.store.memories.remember(user, "work", "team", "Platform", source="chat")
    page = await open_page(browser, api_dev)
    await page.get_by_text("Paste an access token instead").click()
    await page.get_by_label("Access token").fill(tokens.mint(user, email="pat@example.com"))
    await page.get_by_role("button", name="Use this token").click()
    await expect(page.locator('[data-key="work/team"] .value')).to_have_text("Platform")
    await expect(page.locator("#who-email")).to_have_text("pat@example.com")
    await page.reload()  # the token lasts for the browser tab
    await expect(page.locator('[data-key="work/team"] .value')).to_have_text("Platform")
