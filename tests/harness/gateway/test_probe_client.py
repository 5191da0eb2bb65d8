"""The health probe's own HTTP/1.1 client, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from harness.gateway.probe_client import ProbeClient
from resilience_core import ModelCallError

ANSWER = {"choices": [{"message": {"role": "assistant", "content": "pong"}}]}
BODY = {"model": "m", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], **kwargs: Any):
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app, access_log=None, **kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/v1/chat/completions"


def test_answers_are_checked_and_one_connection_serves_every_probe():
    peers: list[Any] = []
    seen: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        seen.append((await request.json(), request.headers.get("Authorization")))
        return web.json_response(ANSWER)

    async def main() -> None:
        runner, url = await serve(handler)
        probe = ProbeClient(url, {"Authorization": "Bearer k"}, BODY)
        try:
            for _ in range(3):
                assert (await probe())["choices"][0]["message"]["content"] == "pong"
        finally:
            probe.close()
            await runner.cleanup()

    asyncio.run(main())
    assert len(peers) == 3 and len(set(peers)) == 1
    assert seen[0] == (BODY, "Bearer k")


def test_a_chunked_answer_is_read_whole():
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        text = json.dumps(ANSWER).encode()
        for start in range(0, len(text), 7):
            await response.write(text[start : start + 7])
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    async def main() -> dict[str, Any]:
        runner, url = await serve(handler)
        probe = ProbeClient(url, {}, BODY)
        try:
            return await probe()
        finally:
            probe.close()
            await runner.cleanup()

    assert asyncio.run(main()) == ANSWER


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (503, ANSWER, "probe answered 503"),
        (200, {"error": "no choices here"}, "no choices"),
        (200, "not json", "not JSON"),
    ],
)
def test_what_a_healthy_model_would_not_say_fails_the_probe(status, body, message):
    async def handler(request: web.Request) -> web.Response:
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)

    async def main() -> None:
        runner, url = await serve(handler)
        probe = ProbeClient(url, {}, BODY)
        try:
            with pytest.raises(ModelCallError, match=message):
                await probe()
        finally:
            probe.close()
            await runner.cleanup()

    asyncio.run(main())


def test_a_connection_the_upstream_closed_between_probes_is_replaced():
    peers: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response(ANSWER)

    async def main() -> None:
        runner, url = await serve(handler, keepalive_timeout=0.1)
        probe = ProbeClient(url, {}, BODY)
        try:
            await probe()
            await asyncio.sleep(0.4)  # the server has closed the idle connection
            await probe()
        finally:
            probe.close()
            await runner.cleanup()

    asyncio.run(main())
    assert len(peers) == 2 and peers[0] != peers[1]


def test_a_probe_cut_off_by_its_timeout_leaves_no_half_read_connection_behind():
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        call = calls
        if call == 1:
            await asyncio.sleep(1.0)  # silent past the probe's timeout, then answers late
        return web.json_response({"choices": [{"message": {"content": f"call {call}"}}]})

    async def main() -> dict[str, Any]:
        runner, url = await serve(handler)
        probe = ProbeClient(url, {}, BODY)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(probe(), 0.2)
            return await probe()  # a fresh connection, not the late answer to the first probe
        finally:
            probe.close()
            await runner.cleanup()

    assert asyncio.run(main())["choices"][0]["message"]["content"] == "call 2"


def test_a_refused_connection_fails_the_probe():
    async def main() -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(ANSWER)

        runner, url = await serve(handler)
        await runner.cleanup()  # nobody listens there now
        with pytest.raises(ConnectionRefusedError):
            await ProbeClient(url, {}, BODY)()

    asyncio.run(main())
