"""Simulated OpenAI-compatible model endpoints: many models, one asyncio process, one port each.

Each endpoint answers `POST /v1/chat/completions` (JSON, or server-sent events with
`stream: true` ending in `data: [DONE]`), `GET /v1/models` and `GET /health`, with seeded Faker
text and a latency model (time to first token + token rate, with jitter). Faults that TCP can't
express are set per endpoint through `POST /_control/fault`; counts of what each endpoint received,
per second and by outcome, come from `GET /_control/counts`.

Run: `python -m harness.endpoints --models 3 --ready-file ready.json` (ports are chosen by the
OS and written to the ready file, which is how the runner learns them; in a container,
`--host 0.0.0.0 --port-base 18000` fixes them instead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from faker import Faker

from harness.faults import EndpointFault, LatencyModel

CONTROL_PREFIX = "/_control"


@dataclass
class EndpointState:
    """One simulated model: identity, latency model, active fault, and what it has received."""

    model: str
    latency: LatencyModel
    seed: int
    fault: EndpointFault = field(default_factory=EndpointFault)
    started: float = field(default_factory=time.monotonic)
    per_second: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rng: random.Random = field(init=False)
    faker: Faker = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.faker = Faker()
        self.faker.seed_instance(self.seed)

    def count(self, outcome: str) -> None:
        second = int(time.monotonic() - self.started)
        self.per_second[second][outcome] += 1

    def words(self, n: int) -> list[str]:
        return [str(w) for w in self.faker.words(nb=n)]


def _completion(state: EndpointState, text: str, prompt_tokens: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{state.rng.getrandbits(48):012x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": state.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }


def _chunk(state: EndpointState, chunk_id: str, delta: dict[str, str], finish: str | None) -> bytes:
    body = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": state.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def _error(status: int, message: str, code: str, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    body = {"error": {"message": message, "type": "simulated_error", "code": code}}
    return web.json_response(body, status=status, headers=headers)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state: EndpointState = request.app["state"]
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        state.count("bad_request")
        return _error(400, "request body is not valid JSON", "invalid_request_error")
    fault = state.fault
    rng = state.rng
    if fault.status and rng.random() < fault.error_rate:
        state.count(f"status_{fault.status}")
        code = {429: "rate_limit_exceeded", 400: fault.code or "context_length_exceeded"}.get(
            fault.status, "server_error"
        )
        retry_after = fault.retry_after if fault.status == 429 else None
        return _error(fault.status, f"simulated {fault.status}", code, retry_after)
    tokens = state.latency.tokens(rng)
    first_token = state.latency.first_token_delay(rng) + fault.extra_first_token
    per_token = state.latency.per_token(rng, fault.token_rate)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    if body.get("stream"):
        try:
            return await _stream(request, state, tokens, first_token, per_token)
        except ConnectionResetError:  # the client went away mid-stream
            state.count("client_gone")
            raise
    await asyncio.sleep(first_token + per_token * tokens)
    if fault.malformed_json:
        state.count("malformed_json")
        return web.Response(text='{"id": "chatcmpl-broken", "choices": [', content_type="application/json")
    state.count("ok")
    text = " ".join(state.words(tokens))
    return web.json_response(_completion(state, text, prompt_tokens))


async def _stream(
    request: web.Request, state: EndpointState, tokens: int, first_token: float, per_token: float
) -> web.StreamResponse:
    fault = state.fault
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await asyncio.sleep(first_token)
    await response.prepare(request)
    chunk_id = f"chatcmpl-{state.rng.getrandbits(48):012x}"
    await response.write(_chunk(state, chunk_id, {"role": "assistant", "content": ""}, None))
    for i, word in enumerate(state.words(tokens)):
        if fault.cut_after_tokens is not None and i >= fault.cut_after_tokens:
            state.count("stream_cut")
            if request.transport is not None:
                request.transport.close()
            return response
        if fault.stall_after_tokens is not None and i == fault.stall_after_tokens:
            await asyncio.sleep(fault.stall_seconds)
        if fault.malformed_sse and i == 1:
            await response.write(b"data: {not json\n\n")
        await response.write(_chunk(state, chunk_id, {"content": word + " "}, None))
        await asyncio.sleep(per_token)
    await response.write(_chunk(state, chunk_id, {}, "stop"))
    if fault.no_done:
        state.count("no_done")
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write(b"data: [DONE]\n\n")
    state.count("ok")
    await response.write_eof()
    return response


async def list_models(request: web.Request) -> web.Response:
    state: EndpointState = request.app["state"]
    return web.json_response(
        {
            "object": "list",
            "data": [{"id": state.model, "object": "model", "owned_by": "simulated"}],
        }
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "model": request.app["state"].model})


async def set_fault(request: web.Request) -> web.Response:
    state: EndpointState = request.app["state"]
    try:
        state.fault = EndpointFault(**(await request.json()))
    except (TypeError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(asdict(state.fault))


async def clear_fault(request: web.Request) -> web.Response:
    state: EndpointState = request.app["state"]
    state.fault = EndpointFault()
    return web.json_response(asdict(state.fault))


async def reset_counts(request: web.Request) -> web.Response:
    """Start counting afresh, with second 0 = now (the runner calls this at a run's start)."""
    state: EndpointState = request.app["state"]
    state.per_second.clear()
    state.started = time.monotonic()
    return web.json_response({"model": state.model, "reset": True})


async def counts(request: web.Request) -> web.Response:
    state: EndpointState = request.app["state"]
    return web.json_response(
        {
            "model": state.model,
            "per_second": {str(s): dict(c) for s, c in sorted(state.per_second.items())},
        }
    )


def build_app(state: EndpointState) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app["state"] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    app.router.add_post(f"{CONTROL_PREFIX}/fault", set_fault)
    app.router.add_delete(f"{CONTROL_PREFIX}/fault", clear_fault)
    app.router.add_get(f"{CONTROL_PREFIX}/counts", counts)
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
    announcement = {"host": host, "ports": ports, "pid": __import__("os").getpid()}
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulated OpenAI-compatible model endpoints")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--prefix", default="model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", default="{}", help="JSON of LatencyModel fields")
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument(
        "--port-base", type=int, default=0, help="model i listens on this + i (containers); 0: OS-chosen"
    )
    args = parser.parse_args(argv)
    latency = replace(LatencyModel(), **json.loads(args.latency))
    names = [f"{args.prefix}-{i}" for i in range(args.models)]
    asyncio.run(serve(names, latency, args.seed, args.host, args.ready_file, args.port_base))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
