"""The gateway's front door: the chat route's common case answered here, the rest by aiohttp.

Why: with the upstream call on a client of its own, aiohttp's server was most of what the
gateway spent per request (its request and response objects, middleware, routing, header
building: ~400 k of ~640 k instructions per chat request). Nearly every request a gateway
sees is one shape: `POST /v1/chat/completions`, HTTP/1.1, a JSON body of known length. This
protocol parses that shape with a few bytes operations and answers it through the same
`ChatHandler.reply` and `stream_answer` the aiohttp handler uses. Anything else on a connection
(another route or method, a chunked or oversized body, `Expect`, `Connection: close`, HTTP/1.0,
a head it cannot read) hands the connection, with every byte not yet answered, to aiohttp's
own protocol for good: one behaviour for the rare cases, written once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast

import orjson

from harness.gateway.http.errors import error_body
from harness.gateway.http.handlers import ChatHandler, Reply, not_json
from harness.gateway.http.relay import (
    DONE,
    EVENT_STREAM,
    ClientGone,
    degraded_events,
    error_event,
    event,
    stream_answer,
)

log = logging.getLogger(__name__)

CHAT_PATH = b"/v1/chat/completions"
MAX_HEAD = 64 * 1024
"""A head longer than this is not the common case: aiohttp answers it (431 or 400)."""
READ_AHEAD = 1024 * 1024
"""Bytes a client may send ahead of its answer (pipelining) before reading pauses."""

_REASONS = {status.value: status.phrase for status in HTTPStatus}


class _Date:
    """The Date header, formatted once a second rather than per response."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.value = formatdate(now, usegmt=True).encode()
        return self.value


class Front:
    """The protocol factory for the gateway's listening socket: one `FrontConnection` per
    client connection; `fallback` makes aiohttp's protocol for a connection handed over."""

    def __init__(
        self,
        chat: ChatHandler,
        fallback: Callable[[], asyncio.Protocol],
        *,
        max_body: int,
        idle_timeout: float,
    ) -> None:
        self.chat = chat
        self.fallback = fallback
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.date = _Date()
        self.connections: set[FrontConnection] = set()

    def __call__(self) -> FrontConnection:
        return FrontConnection(self)

    def close(self) -> None:
        """Close every connection still ours (aiohttp's runner closes those handed to it)."""
        for connection in list(self.connections):
            connection.close()


class FrontConnection(asyncio.Protocol):
    """One client connection while its requests are the common case."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        """A request is being answered: later bytes wait (answers go out in order)."""
        self.lost = False
        self.paused_reading = False
        self._drained: asyncio.Future[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        """When the connection last became idle (opened, or its answer done): the idle timer,
        armed once, checks this when it fires instead of being re-armed on every request."""

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.front.connections.add(self)
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy:
            if len(self.buffer) > READ_AHEAD and self.transport is not None and not self.paused_reading:
                self.paused_reading = True
                self.transport.pause_reading()
            return
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.front.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # -- requests ---------------------------------------------------------------------------

    def _next(self) -> None:
        """Take the next whole request from the buffer, if there is one."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._hand_off()
            return
        length = self._common_case(bytes(buffer[:end]))
        if length is None:
            self._hand_off()
            return
        start = end + 4
        if len(buffer) < start + length:
            return  # the body is on its way; the idle timer still bounds a client that stalls
        body = bytes(buffer[start : start + length])
        del buffer[: start + length]
        self.busy = True
        asyncio.get_running_loop().create_task(self._serve(body))

    def _common_case(self, head: bytes) -> int | None:
        """The body's length when `head` is a chat request this front answers, else None."""
        line_end = head.find(b"\r\n")
        if head[:line_end] != b"POST " + CHAT_PATH + b" HTTP/1.1":
            return None
        length: int | None = None
        json_body = False
        for line in head[line_end + 2 :].split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon or not name or name[-1:] in (b" ", b"\t"):
                return None  # a malformed header: aiohttp's parser says why
            name = name.lower()
            value = value.strip()
            if name == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
            elif name == b"content-type":
                json_body = value.split(b";", 1)[0].strip().lower() == b"application/json"
            elif name in (b"transfer-encoding", b"expect", b"upgrade") or (
                name == b"connection" and value.lower() != b"keep-alive"
            ):
                return None
        if length is None or length > self.front.max_body or not json_body:
            return None
        return length

    async def _serve(self, raw: bytes) -> None:
        chat = self.front.chat
        started = chat.now()
        status = 500
        body: Any = None
        try:
            try:
                body = orjson.loads(raw)
            except ValueError:  # orjson's errors, invalid UTF-8 included
                reply = not_json()
            else:
                reply = await chat.reply(body, started)
            status = reply.status
            await self._answer(reply)
        except Exception:
            log.exception("chat request failed")
            self._write_json(500, {}, error_body("internal error", "server_error"))
            self.close()
        finally:
            chat.observed(body, status, started)
            self._done()

    async def _answer(self, reply: Reply) -> None:
        if reply.stream is not None:
            assert reply.rescue is not None
            stream = reply.stream
            if self.lost:  # the client went before a byte: says nothing of the model
                stream.settle(failed=False)
                stream.close()
                return
            self._write_head(200, {**reply.headers, **EVENT_STREAM}, None)
            try:
                failure = await stream_answer(
                    stream, self._send_event, self.front.chat.stream, reply.rescue, reply.model
                )
            except ClientGone:
                return
            self._write_chunk(error_event(failure) if failure is not None else DONE)
            self._write(b"0\r\n\r\n")
            return
        if reply.as_events:
            assert reply.body is not None
            self._write_head(200, {**reply.headers, "Content-Type": "text/event-stream"}, None)
            for frame in degraded_events(reply.body):
                self._write_chunk(frame)
            self._write(b"0\r\n\r\n")
            return
        self._write_json(reply.status, reply.headers, reply.body)

    async def _send_event(self, payload: bytes) -> None:
        if self.lost:
            raise ClientGone
        self._write_chunk(event(payload))
        if self._drained is not None:
            await self._drained
            if self.lost:
                raise ClientGone

    def _done(self) -> None:
        self.busy = False
        if self.lost or self.transport is None:
            return
        if self.paused_reading:
            self.paused_reading = False
            self.transport.resume_reading()
        self._arm_idle()
        if self.buffer:
            self._next()

    # -- writing ----------------------------------------------------------------------------

    def _write_json(self, status: int, headers: dict[str, str], body: Any) -> None:
        payload = orjson.dumps(body)
        headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
        self._write(self._head(status, headers, len(payload)) + payload)

    def _write_head(self, status: int, headers: dict[str, str], length: int | None) -> None:
        self._write(self._head(status, headers, length))

    def _head(self, status: int, headers: dict[str, str], length: int | None) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
        return "\r\n".join(lines).encode("latin-1") + b"\r\nDate: " + self.front.date() + b"\r\n\r\n"

    def _write_chunk(self, data: bytes) -> None:
        self._write(b"%x\r\n%b\r\n" % (len(data), data))

    def _write(self, data: bytes) -> None:
        if not self.lost and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _wake_writer(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # -- the connection ---------------------------------------------------------------------

    def _arm_idle(self) -> None:
        """aiohttp's bound, kept: a connection that sends no whole request within the client
        timeout (a slow header, an idle keep-alive) is closed. One timer a connection, not one
        a request: cancelling and arming a timer per answer was ~2 % of the front's CPU."""
        loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        if self._idle is None:
            self._idle = loop.call_at(self._idle_since + self.front.idle_timeout, self._idle_out)

    def _idle_out(self) -> None:
        loop = asyncio.get_running_loop()
        due = (loop.time() if self.busy else self._idle_since) + self.front.idle_timeout
        if not self.busy and due <= loop.time():
            self._idle = None
            self.close()
            return
        self._idle = loop.call_at(due, self._idle_out)  # busy, or idle for less than the bound

    def _hand_off(self) -> None:
        """aiohttp's protocol takes the connection, with the bytes not answered yet."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self.front.connections.discard(self)
        transport = self.transport
        assert transport is not None
        protocol = self.front.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data = bytes(self.buffer)
        self.buffer.clear()
        if data:
            protocol.data_received(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
