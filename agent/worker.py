"""The LiveKit worker: one `rtc_session` per call, bound to the caller before the session starts.

Order matters: the user is bound in the ContextVar *before* `session.start()` so
the agent's hooks, `llm_node` and tools see it; the profile is ensured and the
memories are loaded before the greeting, so a returning caller is greeted by name.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from livekit.agents import AgentServer, AgentSession, JobContext, room_io
from livekit.agents.voice.events import CloseEvent, ConversationItemAddedEvent

from agent.cache import SessionMemories
from agent.follow import SETTLE_TIMEOUT_S, ChangeFollower
from agent.greeting import greeting_instructions
from agent.memory_agent import MemoryAgent
from agent.models import build_models
from agent.process_store import ProcessStore, process_store
from agent.transcript import VoiceTranscript
from agent.writebehind import WriteBehind
from memory.models import Profile
from memory.session import set_session_user
from memory.settings import Settings, get_settings
from stores import StoreError, UserStore
from stores.base import MAX_EMAIL_LENGTH

logger = logging.getLogger("memory_agent.worker")

GREETING_LOAD_TIMEOUT = 3.0  # how long the greeting waits for the caller's memories
PROFILE_TIMEOUT = 3.0  # how long the greeting waits for the profile before going on without it
FLUSH_TIMEOUT = 7.0  # both queues flush in parallel, under AgentServer's default 10 s shutdown_process_timeout
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# Keys a test or an embedding application may put in `ctx.proc.userdata` (e.g. from a
# `setup_fnc`) to supply its own objects instead of the ones built from settings. None is
# needed: by default the store is the process store (agent.process_store) from STORE_URL.
OVERRIDE_KEYS = ("store", "llm", "stt", "tts", "vad", "session_options")


class CallResources:
    """What one call owns and must flush/release exactly once (on session close or job shutdown)."""

    def __init__(self, store: UserStore, holder: ProcessStore | None = None) -> None:
        self.store = store
        self.holder = holder  # the process store this call holds (None: a store supplied in userdata)
        self.transcript: VoiceTranscript | None = None
        self.agent: MemoryAgent | None = None
        self.follower: ChangeFollower | None = None
        self.session: AgentSession[Any] | None = None
        self._closing: asyncio.Task[int] | None = None

    def close_soon(self) -> asyncio.Task[int]:
        """Start closing (idempotent); the returned task gives the number of writes lost."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(), name="memory-agent-close")
        return self._closing

    async def _close(self) -> int:
        """Flush memories and transcript side by side, under one deadline shorter than LiveKit's kill timer."""
        if self.follower is not None:
            await self.follower.aclose()
        flushes = [closer.aclose(FLUSH_TIMEOUT) for closer in (self.agent, self.transcript) if closer is not None]
        try:
            return sum(await asyncio.gather(*flushes))
        finally:
            if self.holder is not None:
                await self.holder.release()  # after this call's flush; the last call out closes the store


async def run_call(ctx: JobContext, settings: Settings | None = None) -> AgentSession[Any] | None:
    """Serve one call: bind the caller, ensure the profile, load memories, start the session, greet."""
    settings = settings or get_settings()
    overrides: dict[str, Any] = ctx.proc.userdata
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    try:
        user_id = set_session_user(participant.identity)  # before session.start(): the session inherits it
    except ValueError as exc:
        logger.error("refusing the call in room %s: unusable participant identity (%s)", ctx.room.name, exc)
        ctx.shutdown(reason="unusable participant identity")
        return None
    logger.info("voice session starting for user %s (room %s, job %s)", user_id, ctx.room.name, ctx.job.id)
    logger.debug("user %s has participant identity %r", user_id, participant.identity)

    supplied: UserStore | None = overrides.get("store")
    holder = process_store(settings) if supplied is None else None
    if holder is not None:
        resources = CallResources(holder.acquire(), holder)
    else:
        assert supplied is not None
        resources = CallResources(supplied)

    async def _on_shutdown(reason: str) -> None:
        lost = await resources.close_soon()
        capture = resources.agent.capture if resources.agent is not None else None
        logger.info(
            "voice session of user %s ended (%s); %d writes lost; %d capture requests, %d turns not captured",
            user_id,
            reason or "shutdown",
            lost,
            capture.stats.requests if capture is not None else 0,
            capture.stats.dropped_turns if capture is not None else 0,
        )

    ctx.add_shutdown_callback(_on_shutdown)  # registered before any wait: the store is always released

    store_ready = True
    if holder is not None and not await holder.wait_open(PROFILE_TIMEOUT):
        store_ready = False
        logger.warning(
            "store at %s not open within %.0fs (%s); greeting user %s neutrally, retrying in the background",
            holder.store.url,
            PROFILE_TIMEOUT,
            holder.last_error or "still connecting",
            user_id,
        )

    memories = SessionMemories(resources.store, user_id)
    transcript = VoiceTranscript(resources.store, user_id, ctx.room.name, ctx.job.id)
    resources.transcript = transcript

    async def _stop_transcript() -> None:
        await transcript.discard(SETTLE_TIMEOUT_S)

    async def _end_call() -> None:
        if resources.session is not None:
            await resources.session.aclose()
        ctx.shutdown(reason="the user erased their data")

    # changes made elsewhere (chat, the API, DELETE /me) reach this call's cache within a second
    resources.follower = ChangeFollower(resources.store, memories, on_erased=_end_call, also_discard=[_stop_transcript])
    resources.follower.start()
    memories.start_loading()  # in parallel with the profile look-up
    # a store that is not open fails this at once (the write is queued); an open one gets the whole wait
    first_login = await _ensure_profile(resources.store, user_id, participant.identity, memories.writes)
    if resources.follower.erased.is_set():
        # DELETE /me arrived while the call was being set up: the profile just ensured must go too
        try:
            await resources.store.forget_user(user_id, announce=False)
        except Exception as exc:
            logger.error("repeating the erase of user %s failed (%s)", user_id, type(exc).__name__)
        ctx.shutdown(reason="the user erased their data")
        return None
    if not await memories.wait_loaded(GREETING_LOAD_TIMEOUT if store_ready else 0.0):
        logger.warning(
            "memories of user %s not loaded within %.0fs; greeting without them", user_id, GREETING_LOAD_TIMEOUT
        )

    agent = MemoryAgent(resources.store, memories=memories, settings=settings)
    agent.conversation_id = transcript.thread_id  # captured memories name the call they came from
    resources.agent = agent

    session = _build_session(settings, overrides)
    resources.session = session

    @session.on("conversation_item_added")
    def _on_item(ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if item.type == "message" and item.role in ("user", "assistant") and item.text_content:
            transcript.add(item.role, item.text_content, item_id=item.id)

    @session.on("close")
    def _on_close(ev: CloseEvent) -> None:
        resources.close_soon()

    has_audio_out = session.tts is not None
    await session.start(
        agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(participant_identity=participant.identity, audio_output=has_audio_out),
    )
    known = memories.snapshot() if memories.loaded else []
    session.generate_reply(instructions=greeting_instructions(first_login, known))
    return session


async def _ensure_profile(store: UserStore, user_id: str, identity: str, writes: WriteBehind) -> bool | None:
    """Ensure the caller's profile; whether this call created it, or None if the store did not answer in time.

    A store outage must not cost the caller the call: the profile write is then
    queued behind the reply (retried until stored) and the greeting stays neutral.
    """
    email = identity if _EMAIL_RE.fullmatch(identity) and len(identity) <= MAX_EMAIL_LENGTH else None

    async def ensure() -> Profile:
        return await store.profiles.ensure(user_id, identity=identity, email=email)

    try:
        profile = await asyncio.wait_for(ensure(), PROFILE_TIMEOUT)
    except (StoreError, TimeoutError, OSError) as exc:
        logger.warning(
            "profile of user %s not ensured within %.0fs (%s); greeting neutrally and retrying in the background",
            user_id,
            PROFILE_TIMEOUT,
            type(exc).__name__,
        )
        writes.submit(f"ensure profile {user_id}", ensure)
        return None
    return profile.is_first_login


def _build_session(settings: Settings, overrides: dict[str, Any]) -> AgentSession[Any]:
    """The AgentSession with models from settings (or the ones supplied in `ctx.proc.userdata`)."""
    options: dict[str, Any] = dict(overrides.get("session_options") or {})
    if "llm" in overrides:
        for name in ("llm", "stt", "tts", "vad"):
            if name in overrides:
                options[name] = overrides[name]
    else:
        models = build_models(settings)
        options.update(stt=models.stt, llm=models.llm, tts=models.tts)
    return AgentSession(**options)


server = AgentServer()


@server.rtc_session(agent_name=get_settings().agent_name)
async def entrypoint(ctx: JobContext) -> None:
    """The job entrypoint LiveKit calls for each dispatched room."""
    await run_call(ctx)


__all__ = ["CallResources", "entrypoint", "run_call", "server"]
