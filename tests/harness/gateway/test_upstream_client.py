"""The gateway's upstream HTTP/1.1 client, against real servers on 127.0.0.1, and its body
decoding against every way a response can be split into reads."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.gateway.upstream_client import UpstreamResponse, UpstreamSession

ANSWER = {"choices": [{"message": {"role": "assistant", "content": "pong"}}]}
BODY = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}


async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/v1/chat/completions"


async def raw_server(reply: bytes, *, close: bool) -> tuple[asyncio.Server, str]:
    """A server that answers every request on a connection with `reply`, then maybe hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):  # one head per request (bodies hold none)
                writer.write(reply)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


def test_answers_are_read_and_one_kept_connection_serves_calls_in_turn():
    peers: list[Any] = []
    seen: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        seen.append((await request.json(), request.headers.get("Authorization")))
        return web.json_response(ANSWER, headers={"Retry-After": "2"})

    async def main() -> None:
        runner, url = await serve(handler)
        session = UpstreamSession()
        try:
            for _ in range(3):
                async with session.post(url, json=BODY, headers={"Authorization": "Bearer k"}) as response:
                    assert response.status == 200
                    assert response.headers.get("retry-after") == "2"
                    assert json.loads(await response.read()) == ANSWER
        finally:
            await session.close()
            await runner.cleanup()

    asyncio.run(main())
    assert len(peers) == 3 and len(set(peers)) == 1
    assert seen[0] == (BODY, "Bearer k")


def test_a_stream_is_read_line_by_line_as_it_comes():
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ("a", "b", "c"):
            await response.write(f"data: {word}\n\n".encode())
            await asyncio.sleep(0.01)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def main() -> list[bytes]:
        runner, url = await serve(handler)
        session = UpstreamSession()
        try:
            response = await session.post(url, json=BODY)
            lines = []
            while line := await response.content.readline():
                lines.append(line)
            response.release()
            return lines
        finally:
            await session.close()
            await runner.cleanup()

    lines = asyncio.run(main())
    assert [line for line in lines if line.strip()] == [
        b"data: a\n",
        b"data: b\n",
        b"data: c\n",
        b"data: [DONE]\n",
    ]


def test_nobody_listening_is_a_refusal():
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        session = UpstreamSession()
        with pytest.raises(ConnectionRefusedError):
            await session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY)
        await session.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    "reply",
    [
        b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"choices":',
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndata:\r\n",
    ],
    ids=["length", "chunked"],
)
def test_a_body_cut_short_is_a_reset(reply):
    async def main() -> None:
        server, url = await raw_server(reply, close=True)
        session = UpstreamSession()
        try:
            response = await session.post(url, json=BODY)
            with pytest.raises(ConnectionResetError, match="cut short"):
                await response.read()
        finally:
            await session.close()
            server.close()

    asyncio.run(main())


def test_a_connection_lost_before_the_head_is_a_reset():
    async def main() -> None:
        server, url = await raw_server(b"", close=True)
        session = UpstreamSession()
        try:
            with pytest.raises(ConnectionResetError, match="before answering"):
                await session.post(url, json=BODY)
        finally:
            await session.close()
            server.close()

    asyncio.run(main())


def test_a_body_until_close_is_whole_and_its_connection_is_not_kept():
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + json.dumps(ANSWER).encode()

    async def main() -> None:
        server, url = await raw_server(reply, close=True)
        session = UpstreamSession()
        try:
            for _ in range(2):  # the second call needs a new connection: the first was closed
                async with session.post(url, json=BODY) as response:
                    assert json.loads(await response.read()) == ANSWER
        finally:
            await session.close()
            server.close()

    asyncio.run(main())


def test_an_abandoned_answer_closes_its_connection_and_the_next_call_gets_a_new_one():
    peers: list[Any] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        if len(peers) == 1:
            await asyncio.sleep(0.2)  # the client leaves before the rest
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def main() -> None:
        runner, url = await serve(handler)
        session = UpstreamSession()
        try:
            response = await session.post(url, json=BODY)
            assert await response.content.readline() == b"data: first\n"
            response.release()
            response = await session.post(url, json=BODY)
            await response.read()
            response.release()
        finally:
            await session.close()
            await runner.cleanup()

    asyncio.run(main())
    assert len(peers) == 2 and peers[0] != peers[1]


def test_a_call_cancelled_while_waiting_closes_its_connection():
    async def main() -> None:
        hung_up = asyncio.Event()

        async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await reader.read()  # until the client hangs up
            hung_up.set()
            writer.close()

        server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        session = UpstreamSession()
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await session.post(url, json=BODY)
            async with asyncio.timeout(2):
                await hung_up.wait()  # the upstream sees the connection go, not left open
            assert not any(session._idle.values())
        finally:
            await session.close()
            server.close()

    asyncio.run(main())


def _chunked(parts: list[bytes], trailers: bool) -> bytes:
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts if p)
    end = b"0\r\nX-Checksum: 1\r\n\r\n" if trailers else b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + end


class _Recorder:
    def __init__(self) -> None:
        self.kept: bool | None = None

    def done(self, response: UpstreamResponse, reusable: bool) -> None:
        self.kept = reusable


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.binary(min_size=0, max_size=40), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    chunked=st.booleans(),
    trailers=st.booleans(),
)
def test_the_body_is_the_same_however_the_response_is_split_into_reads(parts, cuts, chunked, trailers):
    body = b"".join(parts)
    wire = (
        _chunked(parts, trailers)
        if chunked
        else b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    points = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})

    async def main() -> tuple[bytes, bool | None]:
        recorder = _Recorder()
        response = UpstreamResponse(recorder)  # type: ignore[arg-type]
        for start, end in itertools.pairwise(points):
            response.feed(wire[start:end])
        await response.head
        return await response.read(), recorder.kept

    read, kept = asyncio.run(main())
    assert read == body
    assert kept is True  # whole, framed as announced: the connection can carry the next call


@pytest.mark.parametrize("head", [b"Content-Length: 4096", b"Connection: close"], ids=["length", "close"])
def test_an_answer_over_the_body_bound_is_given_up(monkeypatch, head):
    monkeypatch.setattr("harness.gateway.upstream_client.MAX_BODY", 1024)
    reply = b"HTTP/1.1 200 OK\r\n%s\r\n\r\n%s" % (head, b"x" * 4096)

    async def main() -> None:
        server, url = await raw_server(reply, close=head == b"Connection: close")
        session = UpstreamSession()
        try:
            response = await session.post(url, json=BODY)
            await asyncio.sleep(0.05)  # the connection it closed has been lost by now
            with pytest.raises(ConnectionResetError, match="answer over"):
                await response.read()
        finally:
            await session.close()
            server.close()

    asyncio.run(main())
