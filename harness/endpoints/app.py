"""Simulated OpenAI-compatible model endpoints: many models, one asyncio process, one port each.

Each endpoint answers `POST /v1/chat/completions` (JSON, or server-sent events with
`stream: true` ending in `data: [DONE]`), Anthropic's `POST /v1/messages` (`surfaces.py`: the
same answers and faults in that API's format), `GET /v1/models` and `GET /health`, with text whose
identity a client can check (`answers.py`) and a latency model (time to first token + token
rate, with jitter). Faults that TCP can't express are set per endpoint through
`POST /_control/fault`; what each endpoint received, per second and by outcome, comes from
`GET /_control/counts`, and every answer it produced (id, words, how many went out, whether it
completed) from `GET /_control/answers`: the ground truth the reports judge by.

Started as `python -m harness.endpoints` (see `__main__.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.endpoints.behaviour import EndpointState, respond
from harness.endpoints.model import EndpointFault, LatencyModel
from harness.endpoints.surfaces import ANTHROPIC, OPENAI, Surface

CONTROL_PREFIX = "/_control"


class HttpWire:
    """`respond`'s output onto an aiohttp request: the response to return is `response`."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse = web.Response(status=204)
        self.streaming = False

    def reset(self) -> None:
        """Close with SO_LINGER 0: the peer gets a RST and no byte."""
        transport = self.request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        raise ConnectionResetError("simulated reset before headers")

    def hang_up(self) -> None:
        if self.request.transport is not None:
            self.request.transport.close()

    async def json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.response = web.json_response(body, status=status, headers=headers)

    async def text(self, status: int, text: str, content_type: str) -> None:
        self.response = web.Response(status=status, text=text, content_type=content_type)

    async def start_stream(self) -> None:
        if not self.streaming:
            self.streaming = True
            self.response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
        await self.response.prepare(self.request)

    async def write(self, data: bytes) -> None:
        await self.response.write(data)

    async def end(self) -> None:
        await self.response.write_eof()


STATE = web.AppKey("state", EndpointState)
"""The endpoint's state, on its aiohttp application."""


async def _answer(request: web.Request, surface: Surface) -> web.StreamResponse:
    state: EndpointState = request.app[STATE]
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        state.count("bad_request")
        return web.json_response(surface.error(400, "request body is not a JSON object"), status=400)
    wire = HttpWire(request)
    await respond(state, body, wire, surface)
    return wire.response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _answer(request, OPENAI)


async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic's Messages API: the same model, answers and faults in its format."""
    return await _answer(request, ANTHROPIC)


async def list_models(request: web.Request) -> web.Response:
    state: EndpointState = request.app[STATE]
    return web.json_response(
        {
            "object": "list",
            "data": [{"id": state.model, "object": "model", "owned_by": "simulated"}],
        }
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "model": request.app[STATE].model})


async def set_fault(request: web.Request) -> web.Response:
    state: EndpointState = request.app[STATE]
    try:
        state.set_fault(EndpointFault(**(await request.json())))
    except (TypeError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(asdict(state.fault))


async def clear_fault(request: web.Request) -> web.Response:
    state: EndpointState = request.app[STATE]
    state.set_fault(EndpointFault())
    return web.json_response(asdict(state.fault))


async def reset_counts(request: web.Request) -> web.Response:
    """Start counting afresh, with second 0 = now, or = the epoch time `t0` in the JSON body
    (the runner's t0, sent before it: this host's clock is the runner's)."""
    state: EndpointState = request.app[STATE]
    body = await request.json() if request.can_read_body else {}
    t0 = body.get("t0") if isinstance(body, dict) else None
    state.reset_counts(float(t0) - time.time() if isinstance(t0, int | float) else 0.0)
    return web.json_response({"model": state.model, "reset": True})


async def counts(request: web.Request) -> web.Response:
    state: EndpointState = request.app[STATE]
    return web.json_response(state.counts())


async def requests_log(request: web.Request) -> web.Response:
    """Every request received since the last reset, oldest first: when, what, how it ended."""
    state: EndpointState = request.app[STATE]
    return web.json_response({"model": state.model, "requests": state.requests})


async def answers(request: web.Request) -> web.Response:
    """Every answer produced since the last reset, oldest first."""
    state: EndpointState = request.app[STATE]
    return web.json_response({"model": state.model, "answers": state.answers})


def build_app(state: EndpointState) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    app.router.add_post(f"{CONTROL_PREFIX}/fault", set_fault)
    app.router.add_delete(f"{CONTROL_PREFIX}/fault", clear_fault)
    app.router.add_get(f"{CONTROL_PREFIX}/counts", counts)
    app.router.add_get(f"{CONTROL_PREFIX}/answers", answers)
    app.router.add_get(f"{CONTROL_PREFIX}/requests", requests_log)
    app.router.add_post(f"{CONTROL_PREFIX}/counts/reset", reset_counts)
    return app


async def serve(
    models: list[str],
    latency: LatencyModel,
    seed: int,
    host: str,
    ready_file: Path | None,
    port_base: int = 0,
) -> None:
    runners = []
    ports = {}
    for i, model in enumerate(models):
        state = EndpointState(model, latency, seed * 1000 + i)
        runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port_base + i if port_base else 0, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        ports[model] = server.sockets[0].getsockname()[1]
        runners.append(runner)
    announcement = {"host": host, "ports": ports, "pid": os.getpid()}
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(announcement))
        tmp.replace(ready_file)
    else:
        print(json.dumps(announcement), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()
