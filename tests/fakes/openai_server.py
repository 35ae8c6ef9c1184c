"""Tiny OpenAI-compatible chat-completions server (aiohttp) for offline tests.

Serves:
  GET  /v1/models              (livekit-plugins-openai prewarm calls this)
  POST /v1/chat/completions    stream=true -> SSE chunks, stream=false -> JSON

Behaviour is scripted by a `responder(body: dict) -> list[dict]` callable that returns
"actions": {"text": "..."} or {"tool_call": {"name": ..., "arguments": "{...}"}}.
Every request body is recorded in server.requests.

Memory capture requests (JSON mode: `response_format` set) are answered by
`capture_responder(body) -> str` (the reply content, e.g. '{"operations": []}') when
one is set; `capture_status` makes them fail with that HTTP status (an outage) and
`capture_latency` / `latency` delay answers. `max_capture_inflight` records how many
capture requests were ever served at the same time.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

Responder = Callable[[dict[str, Any]], list[dict[str, Any]]]
CaptureResponder = Callable[[dict[str, Any]], str]


def is_capture(body: dict[str, Any]) -> bool:
    """A memory capture request (JSON mode), as opposed to a reply request."""
    return bool(body.get("response_format"))


def capture_data(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON data a capture request sends: existing memories and the latest exchange."""
    data: dict[str, Any] = json.loads(body["messages"][-1]["content"])
    return data


def capture_user_text(body: dict[str, Any]) -> str:
    """Everything the user said in the exchange of a capture request."""
    return " ".join(turn["text"] for turn in capture_data(body)["latest_exchange"] if turn["role"] == "user")


def operations(*ops: dict[str, Any]) -> str:
    """A capture answer holding `ops`."""
    return json.dumps({"operations": list(ops)})


def default_responder(body: dict[str, Any]) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = body.get("messages", [])
    last: dict[str, Any] = msgs[-1] if msgs else {}
    if last.get("role") == "tool":
        return [{"text": f"Done. Tool said: {last.get('content')}"}]
    tools = [t["function"]["name"] for t in body.get("tools", []) or []]
    user: dict[str, Any] = next((m for m in reversed(msgs) if m.get("role") == "user"), {})
    content = user.get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    if "remember_fact" in tools and "remember" in text.lower():
        fact = re.sub(r"^\s*(that)?\s*", "", text.split("remember", 1)[1]).strip()
        return [{"tool_call": {"name": "remember_fact", "arguments": json.dumps({"fact": fact})}}]
    return [{"text": "Hello from the fake server."}]


class FakeOpenAIServer:
    def __init__(
        self,
        responder: Responder = default_responder,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        capture_responder: CaptureResponder | None = None,
        latency: float = 0.0,
    ):
        self.responder = responder
        self.capture_responder = capture_responder
        self.capture_status: int | None = None
        self.latency = latency
        self.capture_latency: float | None = None
        self.capture_inflight = 0
        self.max_capture_inflight = 0
        self.host, self.port = host, port
        self.requests: list[dict[str, Any]] = []
        self.models_hits = 0  # GET /v1/models (the plugin's prewarm)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> FakeOpenAIServer:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def aclose(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeOpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _models(self, request: web.Request) -> web.Response:
        self.models_hits += 1
        return web.json_response(
            {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "me"}]}
        )

    @property
    def capture_requests(self) -> list[dict[str, Any]]:
        return [body for body in self.requests if is_capture(body)]

    @property
    def reply_requests(self) -> list[dict[str, Any]]:
        return [body for body in self.requests if not is_capture(body)]

    async def _capture(self, body: dict[str, Any]) -> web.Response:
        self.capture_inflight += 1
        self.max_capture_inflight = max(self.max_capture_inflight, self.capture_inflight)
        try:
            delay = self.capture_latency if self.capture_latency is not None else self.latency
            if delay:
                await asyncio.sleep(delay)
            if self.capture_status is not None:
                return web.json_response({"error": {"message": "capture endpoint down"}}, status=self.capture_status)
            assert self.capture_responder is not None
            content = self.capture_responder(body)
        finally:
            self.capture_inflight -= 1
        return web.json_response(
            {
                "id": "chatcmpl-" + uuid.uuid4().hex[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake-model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if is_capture(body) and (self.capture_responder is not None or self.capture_status is not None):
            return await self._capture(body)
        if self.latency:
            await asyncio.sleep(self.latency)
        actions = self.responder(body)
        cid = "chatcmpl-" + uuid.uuid4().hex[:12]
        created = int(time.time())
        model = body.get("model", "fake-model")

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> dict:
            c: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                c["usage"] = usage
            return c

        chunks: list[dict] = [chunk({"role": "assistant", "content": ""})]
        finish = "stop"
        tool_idx = 0
        for a in actions:
            if "text" in a:
                words = a["text"].split(" ")
                for i, w in enumerate(words):
                    chunks.append(chunk({"content": (w if i == 0 else " " + w)}))
            elif "tool_call" in a:
                tc = a["tool_call"]
                call_id = tc.get("id") or "call_" + uuid.uuid4().hex[:12]
                args = tc.get("arguments", "{}")
                # first delta: id + name + empty args; then args streamed in two pieces
                chunks.append(
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": tool_idx,
                                    "id": call_id,
                                    "type": "function",
                                    "function": {"name": tc["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                )
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    chunks.append(chunk({"tool_calls": [{"index": tool_idx, "function": {"arguments": piece}}]}))
                tool_idx += 1
                finish = "tool_calls"
        chunks.append(chunk({}, finish=finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(chunk({}, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))

        if not body.get("stream"):
            # non-streaming fallback (not used by livekit-plugins-openai, handy for curl)
            text = "".join(a.get("text", "") for a in actions)
            return web.json_response(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
            )

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        for c in chunks:
            await resp.write(f"data: {json.dumps(c)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
