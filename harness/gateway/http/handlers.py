"""The OpenAI-compatible routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from harness.gateway.http.errors import error_body, routing_error
from harness.gateway.http.relay import Continue, Stream, degraded_completion, relay, send_degraded_events
from harness.gateway.routing import Routing, TooManyFallbacks
from harness.gateway.upstream import StreamStart


@dataclass(slots=True)
class Reply:
    """What the chat route answers, decided before a byte is written: the HTTP handler writes
    it, the simulation reads it (the same decisions, with or without a socket)."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    """A JSON answer or error; with `stream`, None."""
    stream: Stream | None = None
    """An upstream stream to relay (`stream_answer`), rescued by `rescue` when it fails."""
    rescue: Continue | None = None
    model: str = ""
    as_events: bool = False
    """`body` (a degraded answer) goes out as a one-event stream."""


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> Reply:
    return Reply(status, {}, error_body(message, "invalid_request_error", code, param))


def not_json() -> Reply:
    """The answer to a body that does not parse as JSON."""
    return _error(400, "request body is not valid JSON")


class ChatHandler:
    """Parses a chat request, routes it, and sends the answer, a stream or an error."""

    def __init__(
        self,
        routing: Routing,
        degraded_answer: Callable[[], str | None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.observe: Callable[[str, int, float], None] | None = None
        """Told each answered request's group, status and seconds (the /metrics counters)."""
        self.routing = routing
        self.stream = routing.config.policies.stream
        self.degraded_answer = degraded_answer
        """The operator's degraded-mode answer while that switch is on, else None."""
        self.now = now

    async def chat(self, request: web.Request) -> web.StreamResponse:
        started = self.now()
        try:
            body = orjson.loads(await request.read())  # the front's parser: one rule for both paths
        except ValueError:
            body = None
            response = await self._answer(request, not_json())
        else:
            response = await self._answer(request, await self.reply(body, started))
        self.observed(body, response.status, started)
        return response

    def observed(self, body: Any, status: int, started: float) -> None:
        """Tell the /metrics counters how a request (its parsed body, or None) was answered."""
        if self.observe is not None:
            group = body.get("model") if isinstance(body, dict) else None
            self.observe(group if isinstance(group, str) else "", status, self.now() - started)

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.stream is not None:
            assert reply.rescue is not None
            return await relay(request, reply.stream, reply.headers, self.stream, reply.rescue, reply.model)
        if reply.as_events:
            assert reply.body is not None
            return await send_degraded_events(request, reply.body, reply.headers)
        return web.Response(
            body=orjson.dumps(reply.body),
            status=reply.status,
            headers=reply.headers,
            content_type="application/json",
            charset="utf-8",
        )

    async def reply(self, body: Any, started: float) -> Reply:
        """The answer to one parsed request body: validated, routed, and what to send."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(400, "the request needs a string 'model'", "model")
        malformed = _malformed(body)
        if malformed is not None:
            return _error(400, malformed[1], malformed[0])
        try:
            chain = self.routing.chain(body)
        except TooManyFallbacks as exc:
            return _error(400, str(exc), "fallbacks")
        if isinstance(chain, str):
            shown = chain if len(chain) <= 80 else chain[:77] + "..."
            return _error(404, f"unknown model {shown!r}", "model", "model_not_found")
        stream = bool(body.get("stream"))
        switched = self.degraded_answer()
        if switched is not None:  # the operator's switch: no model is called
            headers = {"x-served-by": "", "x-attempts": "0", "x-degraded": "true"}
            headers["x-gateway-ms"] = f"{(self.now() - started) * 1000:.2f}"
            return Reply(200, headers, degraded_completion(switched, stream), as_events=stream)
        outcome, attempts, group, deadline = await self.routing.answer(chain, body)
        headers = {
            "x-served-by": outcome.model or "",
            "x-attempts": str(attempts),
            "x-degraded": "true" if outcome.degraded else "false",
            "x-gateway-ms": f"{(self.now() - started) * 1000:.2f}",
        }
        if not outcome.ok:
            status, error, extra = routing_error(outcome.error)
            return Reply(status, {**headers, **extra}, error)
        value = outcome.value
        if isinstance(value, StreamStart):
            routing = self.routing
            rest = chain[chain.index(group) :]

            def rescue(sent: str, failed: str, eject: bool) -> Awaitable[tuple[str, Any] | None]:
                return routing.continuation(rest, body, sent, deadline, failed, eject)

            return Reply(200, headers, stream=value, rescue=rescue, model=outcome.model or "")
        if outcome.degraded:
            return Reply(200, headers, degraded_completion(str(value), stream), as_events=stream)
        return Reply(200, headers, value)

    async def models(self, request: web.Request) -> web.Response:
        names = self.routing.pools
        return web.json_response({"object": "list", "data": [{"id": n, "object": "model"} for n in names]})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "mode": self.routing.config.mode})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)


def _malformed(body: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) when the request cannot be a chat completion, checked before any model is
    called: a non-empty list of messages, a list of fallbacks, a boolean `stream`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "messages", "'messages' must be a non-empty list of message objects"
    if "fallbacks" in body and not isinstance(body["fallbacks"], list):
        return "fallbacks", "'fallbacks' must be a list of model names"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream", "'stream' must be true or false"
    return None
