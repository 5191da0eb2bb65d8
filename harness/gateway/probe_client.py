"""Health probes over their own kept-alive connection, without the HTTP client library.

At 500 idle models the default policy sends 17 probes a second. Through aiohttp each cost
about 0.5 ms of CPU on our machines (a bare session sending nothing else used 1.07 % of a core
for them), over the 1 % budget for probing before the gateway did anything of its own. A probe
needs little of a client: one fixed request, encoded once, and of the answer its status and a
JSON body with `choices`. So each upstream gets one connection, kept open between probes, and a
parser for exactly that (Content-Length, chunked, or until close). Anything it does not expect
fails the probe, as a broken answer would.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from harness.gateway.upstream import parse_answer
from resilience_core import ModelCallError

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
"""A one-token answer is well under a kilobyte: a bigger one is not a probe's answer."""


class ProbeClient:
    """Sends one fixed POST to one URL and checks the answer; reuses its connection."""

    def __init__(self, url: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            raise ValueError(f"a probe needs an http(s) URL, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        payload = json.dumps(body, separators=(",", ":")).encode()
        host = parts.netloc.rpartition("@")[2]
        head = [
            f"POST {target} HTTP/1.1",
            f"Host: {host}",
            "Content-Type: application/json",
            "Accept: application/json",
            f"Content-Length: {len(payload)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
        self._connection: _Exchange | None = None

    async def __call__(self) -> dict[str, Any]:
        """The answer, or an exception for anything a healthy model would not have said."""
        for last_try in (False, True):
            kept = self._connection
            reused = kept is not None and not kept.closed
            connection = kept if kept is not None and reused else await self._connect()
            try:
                status, body = await connection.exchange(self.request)
                break
            except ConnectionError:
                self._drop(connection)
                # The upstream closed a kept connection just as we used it: once more on a new one.
                if last_try or not reused or connection.answered:
                    raise
            except BaseException:  # a timeout or cancellation mid-answer: the connection is unusable
                self._drop(connection)
                raise
        if not connection.keep_alive:
            self._drop(connection)
        if status != 200:
            raise ModelCallError(f"probe answered {status}", status=status)
        return parse_answer(body, "probe")

    async def _connect(self) -> _Exchange:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Exchange, self.host, self.port, ssl=self.ssl)
        self._connection = connection
        return connection

    def _drop(self, connection: _Exchange) -> None:
        connection.close()
        if self._connection is connection:
            self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._drop(self._connection)


class _Exchange(asyncio.Protocol):
    """One connection: a request written, its response read whole."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True
        self.answered = False
        """Whether any byte of the current response arrived (then it is not retried)."""
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self.answered = True
        self._finish(at_close=False)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(at_close=True)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionResetError("the upstream closed the probe's connection"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        if self.closed:
            raise ConnectionResetError("the probe's connection is closed")
        self._buffer.clear()
        self.answered = False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter

    def _finish(self, *, at_close: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = _parse(bytes(self._buffer), at_close)
        except ValueError as exc:
            self.keep_alive = False
            waiter.set_exception(ModelCallError(f"probe answer unreadable: {exc}", status=502))
            return
        if parsed is not None:
            status, headers, body = parsed
            self.keep_alive = headers.get("connection", "").lower() != "close" and not at_close
            waiter.set_result((status, body))


def _parse(data: bytes, at_close: bool) -> tuple[int, dict[str, str], bytes] | None:
    """(status, headers, body) once the response is whole, None while more is to come."""
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HEAD:
                raise ValueError("response head too long")
            return None
        lines = data[:end].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise ValueError("not an HTTP/1 response")
        status = int(rest[:3])
        data = data[end + 4 :]
        if 100 <= status < 200:  # 100 Continue and friends: the real response follows
            continue
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        break
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(data)
        return None if body is None else (status, headers, body)
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY:
            raise ValueError("response body too long")
        return (status, headers, data[:length]) if len(data) >= length else None
    if len(data) > MAX_BODY:
        raise ValueError("response body too long")
    return (status, headers, data) if at_close else None


def _dechunk(data: bytes) -> bytes | None:
    body, at = bytearray(), 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(data[at:line_end].split(b";", 1)[0], 16)
        start = line_end + 2
        if size == 0:
            return bytes(body) if data.find(b"\r\n", start) >= 0 else None
        if len(data) < start + size + 2:
            return None
        body += data[start : start + size]
        if len(body) > MAX_BODY:
            raise ValueError("response body too long")
        at = start + size + 2
