"""A stand-in for someone else's gateway in front of one simulated model: `honest` relays what
it gets; `dishonest` does what LiteLLM 1.80.5 was seen doing: when the upstream stream dies it
appends its own `finish_reason: "stop"` chunk and `[DONE]`, so the cut answer looks complete.

Run: `python -m tests.integration.front --upstream http://127.0.0.1:PORT/v1 --mode dishonest
--ready-file F` (writes {"url": ..., "pid": ...} once listening), or with `--stack STACK_JSON
--port N` the way `run --target-cmd` starts a gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

import aiohttp
from aiohttp import web

STOP = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    body["model"] = request.app["model"]
    session: aiohttp.ClientSession = request.app["session"]
    upstream = await session.post(f"{request.app['upstream']}/chat/completions", json=body)
    if not body.get("stream") or upstream.status != 200:
        payload = await upstream.read()
        return web.Response(body=payload, status=upstream.status, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    try:
        async for line in upstream.content:
            await response.write(line)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        if request.app["mode"] == "dishonest":  # paper over the cut
            await response.write(b"data: " + json.dumps(STOP).encode() + b"\n\ndata: [DONE]\n\n")
    await response.write_eof()
    return response


async def serve(upstream: str, model: str, mode: str, port: int, ready: Path | None) -> None:
    app = web.Application()
    app["upstream"], app["model"], app["mode"] = upstream.rstrip("/"), model, mode
    app["session"] = aiohttp.ClientSession()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if ready is not None:
        told = {"url": f"http://127.0.0.1:{port}", "pid": os.getpid()}
        ready.write_text(json.dumps(told))  # noqa: ASYNC240 (once, at start)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", help="the model's OpenAI base URL")
    parser.add_argument("--stack", type=Path, help="or a stack.json, for the model's base URL")
    parser.add_argument("--model", default="model-0")
    parser.add_argument("--mode", choices=["honest", "dishonest"], required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args()
    upstream = args.upstream
    if args.stack is not None:
        upstream = json.loads(args.stack.read_text())["base_urls"][args.model]
    asyncio.run(serve(upstream, args.model, args.mode, args.port, args.ready_file))


if __name__ == "__main__":
    main()
