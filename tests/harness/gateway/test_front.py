"""The chat route's front on its own, with a stand-in handler: its idle bound (armed once per
connection: it closes a connection that stays idle for the client timeout, never one whose
answer is still being worked on, and counts idleness from the last answer, not from when the
connection opened), and its JSON (orjson: what it refuses, what it writes)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from harness.gateway.http.front import Front
from harness.gateway.http.handlers import Reply

IDLE = 0.3
ANSWER = {"choices": [{"message": {"content": "ok"}}]}


class SlowChat:
    """Stands in for the chat handler: each answer takes `seconds` and echoes the request."""

    stream = None

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self) -> float:
        return time.monotonic()

    async def reply(self, body: Any, started: float) -> Reply:
        await asyncio.sleep(self.seconds)
        return Reply(200, {}, {**ANSWER, "echo": body})

    def observed(self, body: Any, status: int, started: float) -> None:
        pass


def _request(body: bytes = b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}') -> bytes:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _answered(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


@asynccontextmanager
async def _connected(
    seconds: float, idle: float = IDLE
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A front on a free port whose answers take `seconds`, and one client connection to it."""
    front = Front(SlowChat(seconds), asyncio.Protocol, max_body=1 << 20, idle_timeout=idle)  # type: ignore[arg-type]
    server = await asyncio.get_running_loop().create_server(front, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        yield reader, writer
        writer.close()
    finally:
        server.close()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), seconds) == b""
    except TimeoutError:
        return False


def test_an_answer_longer_than_the_idle_bound_is_not_cut_and_idleness_counts_from_it():
    async def scenario() -> None:
        async with _connected(seconds=3 * IDLE) as (reader, writer):
            writer.write(_request())
            answer = await asyncio.wait_for(_answered(reader), 5)  # the timer fired meanwhile
            assert answer.startswith(b"HTTP/1.1 200") and b'"ok"' in answer
            answered = time.monotonic()
            assert not await _closed_within(reader, IDLE / 2)  # idle since the answer, not the open
            assert await _closed_within(reader, 5)
            assert IDLE * 0.8 < time.monotonic() - answered < IDLE + 2

    asyncio.run(scenario())


def test_a_connection_that_never_sends_a_whole_request_is_closed():
    async def scenario() -> None:
        async with _connected(seconds=0) as (reader, writer):
            writer.write(_request()[:20])  # a slow header
            opened = time.monotonic()
            assert await _closed_within(reader, 5)
            assert IDLE * 0.8 < time.monotonic() - opened < IDLE + 2

    asyncio.run(scenario())


def test_bodies_that_are_not_json_by_rfc_8259_are_400_and_answers_are_utf8_json():
    """NaN, Infinity, a lone surrogate and bytes that are not UTF-8 are not JSON (the standard
    library's parser took the first three); the answer is UTF-8, its text whole."""

    async def scenario() -> None:
        async with _connected(seconds=0, idle=30) as (reader, writer):
            for body in (
                b'{"model": "chat", "temperature": NaN}',
                b'{"model": "chat", "top_p": Infinity}',
                b'{"model": "\\ud800"}',
                '{"model": "é"}'.encode("latin-1"),
            ):
                writer.write(_request(body))
                answer = await asyncio.wait_for(_answered(reader), 5)
                assert answer.startswith(b"HTTP/1.1 400"), body
                assert b"not valid JSON" in answer
            text = "naïve 東京 \U0001f600"
            writer.write(_request(json.dumps({"model": "chat", "messages": [{"content": text}]}).encode()))
            answer = await asyncio.wait_for(_answered(reader), 5)
            assert answer.startswith(b"HTTP/1.1 200")
            echoed = json.loads(answer.split(b"\r\n\r\n", 1)[1].decode("utf-8"))
            assert echoed["echo"]["messages"][0]["content"] == text

    asyncio.run(scenario())
