"""The ChatKit server: stores through `store.threads`, answers with an openai-agents agent.

`respond` runs the agent on the thread's recent history (voice-call transcripts
included, so a call can be continued in text) with the user's relevant memories
in the instructions as delimited background data, and the memory tools bound to
the authenticated user. With MEMORY_CAPTURE=background (default) the chat model
only gets `recall`; the user's turn is captured behind the reply (api.chat_capture),
like a voice turn. The user's memory switch is honoured: off = no memories in the
instructions, no capture, tools say memory is off; "stop remembering things about
me" / "you can remember again" switch it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable

from agents import Agent, Model, RunConfig, Runner
from agents.models.fake_id import FAKE_RESPONSES_ID
from chatkit.agents import AgentContext, ThreadItemConverter, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.types import (
    AssistantMessageItem,
    Attachment,
    ChatKitReq,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    is_streaming_req,
)
from openai.types.responses import EasyInputMessageParam, ResponseInputContentParam, ResponseInputTextParam

from api.agent_tools import memory_tools
from api.chat_capture import ChatCaptures
from api.chat_inputs import AttachmentInputs
from api.context import RequestContext
from api.recall import memories_for_turn
from api.titles import thread_title
from capture import CaptureTurn
from memory.capture import consent_change
from memory.recall import background_block
from memory.settings import CaptureMode
from stores import UserStore

logger = logging.getLogger("memory_agent.api.chat")

HISTORY_ITEMS = 30
MAX_TURNS = 6
INSTRUCTIONS = (
    "You are a helpful assistant with a long-term memory of the user. The same memory is shared with "
    "the user's voice calls, whose transcripts appear in this chat as earlier messages. "
    "When the user tells you something worth keeping about themselves (name, preferences, people, work, "
    "goals, important facts), call `remember`. Call `recall` to look something up that is not in the "
    "background below, and `forget` when the user asks you to forget something or corrects it. "
    "Keep answers short and friendly."
)
BACKGROUND_INSTRUCTIONS = (
    "You are a helpful assistant with a long-term memory of the user. The same memory is shared with "
    "the user's voice calls, whose transcripts appear in this chat as earlier messages. "
    "What the user tells you about themselves is remembered automatically: you never need to save "
    "anything. Answer questions about them from the background below; call `recall` only for something "
    "that is not in it. Keep answers short and friendly."
)
MEMORY_OFF_INSTRUCTIONS = (
    "You are a helpful assistant. Keep answers short and friendly. Memory is switched off for this user "
    "at their request: nothing they say is remembered and no memories are available. If they ask, say so, "
    "and that writing 'you can remember again' turns it back on."
)
NOT_CONFIGURED = (
    "The assistant is not configured on this server: set OPENAI_API_KEY (or OPENAI_BASE_URL for an "
    "OpenAI-compatible server) and restart the API."
)


class _Converter(ThreadItemConverter):
    """Turns stored items into model input; images and small text files are shown to the model
    (`api.chat_inputs`), other attachments and tags become short text notes."""

    def __init__(self, inputs: AttachmentInputs | None = None) -> None:
        self.inputs = inputs or AttachmentInputs(None, "")

    async def attachment_to_message_content(self, attachment: Attachment) -> ResponseInputContentParam:
        return await self.inputs.content(attachment)

    async def assistant_message_to_input(self, item: AssistantMessageItem) -> EasyInputMessageParam:
        # plain-string content: the chat-completions converter rejects ChatKit's `output_text` parts
        return EasyInputMessageParam(
            type="message", role="assistant", content="".join(part.text for part in item.content)
        )

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputTextParam:
        return ResponseInputTextParam(type="input_text", text=f"@{tag.text}: {json.dumps(tag.data)[:2000]}")


def user_text(item: UserMessageItem | None) -> str:
    if item is None:
        return ""
    return " ".join(part.text for part in item.content if isinstance(part, UserMessageTextContent)).strip()


class MemoryChatServer(ChatKitServer[RequestContext]):
    """ChatKit server over the user-keyed store; `model` is None when no LLM is configured."""

    def __init__(
        self,
        store: UserStore,
        model: Model | None,
        *,
        capture_mode: CaptureMode = "tools",
        captures: ChatCaptures | None = None,
    ) -> None:
        super().__init__(store.threads, store.threads)
        self.user_store = store
        self.model = model
        self.capture_mode = capture_mode
        self.captures = captures  # None: nothing is captured in the background

    async def aclose(self, timeout: float | None = None) -> int:  # noqa: ASYNC109 - public API: a bound, not a cancel scope
        """Capture pending chat turns within `timeout`; returns how many were dropped."""
        return await self.captures.aclose(timeout) if self.captures is not None else 0

    async def _memory_enabled(self, user_id: str) -> bool:
        profile = await self.user_store.profiles.get(user_id)
        return profile.memory_enabled if profile else self.user_store.profiles.default_memory_enabled

    async def process_parsed(
        self, request: ChatKitReq, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        """`ChatKitServer.process` for a request the endpoint already parsed.

        The SDK's `process` builds a new `TypeAdapter(ChatKitReq)` on every call
        (about 15 ms of CPU per request); the endpoint parses once with a cached one.
        """
        if is_streaming_req(request):
            return StreamingResult(self._process_streaming(request, context))
        return NonStreamingResult(await self._process_non_streaming(request, context))

    async def respond(
        self, thread: ThreadMetadata, input_user_message: UserMessageItem | None, context: RequestContext
    ) -> AsyncIterator[ThreadStreamEvent]:
        if self.model is None:
            raise CustomStreamError(NOT_CONFIGURED, allow_retry=False)
        user_id = context.user_id
        said = user_text(input_user_message)
        enabled = await self._memory_enabled(user_id)
        switch = consent_change(said)
        if switch is not None and switch != enabled:
            await self.user_store.profiles.set_memory_enabled(user_id, switch)
            logger.info("user %s switched memory %s in chat", user_id, "on" if switch else "off")
            enabled = switch
        page = await self.store.load_thread_items(thread.id, None, HISTORY_ITEMS, "desc", context)
        converter = _Converter(AttachmentInputs(self.user_store.threads.files, user_id))
        history = await converter.to_agent_input(list(reversed(page.data)))
        if enabled:
            memories = await memories_for_turn(self.user_store, user_id, said)
            background = background_block(memories)
            base = INSTRUCTIONS if self.capture_mode == "tools" else BACKGROUND_INSTRUCTIONS
            instructions = f"{base}\n\n{background}" if background else base
        else:
            instructions = MEMORY_OFF_INSTRUCTIONS
        item_id = input_user_message.id if input_user_message is not None else None
        agent: Agent[AgentContext[RequestContext]] = Agent(
            name="memory-assistant",
            instructions=instructions,
            model=self.model,
            tools=list(
                memory_tools(
                    self.user_store,
                    user_id,
                    write=self.capture_mode == "tools",
                    enabled=enabled,
                    thread_id=thread.id,
                    item_id=item_id,
                )
            ),
        )
        agent_context = AgentContext[RequestContext](thread=thread, store=self.store, request_context=context)
        result = Runner.run_streamed(
            agent,
            history,
            context=agent_context,
            max_turns=MAX_TURNS,
            run_config=RunConfig(tracing_disabled=True),
        )
        events = stream_agent_response(agent_context, result)
        async for event in with_real_item_ids(events, lambda: self.store.generate_item_id("message", thread, context)):
            yield event
        if not thread.title:  # the first exchange is done: name the thread (ChatKit saves and announces it)
            thread.title = thread_title(input_user_message)
        # after the reply: the turn is captured in the background, never awaited here
        if self.captures is not None and enabled and switch is None and said:
            previous = next((i for i in page.data if isinstance(i, AssistantMessageItem)), None)
            earlier = "".join(part.text for part in previous.content) if previous is not None else None
            self.captures.add(user_id, thread.id, CaptureTurn(said, item_id, earlier))


async def with_real_item_ids(
    events: AsyncIterator[ThreadStreamEvent], make_id: Callable[[], str]
) -> AsyncIterator[ThreadStreamEvent]:
    """Give each assistant message a store id of its own.

    Over the chat-completions API the Agents SDK labels every message `__fake_id__`,
    so without this each answer would overwrite the previous one in the thread
    (openai/chatkit-python#36).
    """
    current: str | None = None
    async for event in events:
        if isinstance(event, ThreadItemAddedEvent) and event.item.id == FAKE_RESPONSES_ID:
            current = make_id()
            event = ThreadItemAddedEvent(item=event.item.model_copy(update={"id": current}))
        elif isinstance(event, ThreadItemUpdatedEvent) and event.item_id == FAKE_RESPONSES_ID:
            current = current or make_id()
            event = event.model_copy(update={"item_id": current})
        elif isinstance(event, ThreadItemDoneEvent) and event.item.id == FAKE_RESPONSES_ID:
            event = ThreadItemDoneEvent(item=event.item.model_copy(update={"id": current or make_id()}))
            current = None
        yield event
