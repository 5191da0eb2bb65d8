"""The gateway's HTTP/1.1 client for its upstream calls: kept-alive connections and a parser for
what an OpenAI-compatible answer needs, without aiohttp's client.

Measured here, one request at a time with a 300-byte JSON answer: aiohttp's `ClientSession`
spends ~140 µs of CPU on a request, this ~50 µs; the difference was the largest share of what
the gateway spent on a request outside the HTTP server that receives it. It speaks the part of
`aiohttp.ClientSession` that `Upstream` uses (`post(url, json=, headers=)`, awaited or as a
context manager; a response with `status`, `headers` (lower-case names), `read()`, `json()`,
`content.readline()`, `release()`, `close()`), so the simulation's socket-less session stands
in for it unchanged. Failures come out in the core's vocabulary: `ConnectionRefusedError`
(nobody listens), `ConnectionResetError` (the connection broke, before the head or mid-body).
Like aiohttp's, it retries nothing itself: a kept connection the upstream closed just as it was
reused is a reset, and the retry policy decides.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import orjson

MAX_HEAD = 64 * 1024
"""A response head longer than this is not an API's answer."""
MAX_BODY = 64 * 1024 * 1024
"""Body bytes held unread before the answer is given up: there is no flow control (answers are
kilobytes, and a stream is read as it comes), so this is what bounds a runaway upstream."""
MAX_IDLE = 256
"""Kept connections per upstream: more than the gateway ever has in flight to one at our rates."""
USER_AGENT = "model-chaos-harness-gateway"
NO_BODY = frozenset({204, 304})
_TRAILERS = -2
"""A chunked body's state after its last chunk: the trailers' end is due."""


@dataclass(frozen=True, slots=True)
class _Target:
    key: tuple[str, int, bool]
    host: str
    port: int
    tls: bool
    head: bytes
    """The request line and the headers every call to this URL sends."""


@lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise ValueError(f"an upstream needs an http(s) URL, not {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
    )
    return _Target((parts.hostname, port, tls), parts.hostname, port, tls, head.encode("latin-1"))


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


class UpstreamSession:
    """Kept-alive connections per upstream (host, port, scheme), taken last-in first-out."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self.closed = False

    def post(self, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None) -> _Pending:
        return _Pending(self._send(url, json, headers))

    async def __aenter__(self) -> UpstreamSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _send(self, url: str, body: Any, headers: Mapping[str, str] | None) -> UpstreamResponse:
        if self.closed:
            raise RuntimeError("the upstream session is closed")
        target = _target(url)
        payload = orjson.dumps(body)
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) if headers else ""
        request = b"".join(
            (target.head, f"{extra}Content-Length: {len(payload)}\r\n\r\n".encode("latin-1"), payload)
        )
        connection = self._take(target.key) or await _connect(target, self)
        return await connection.send(request)

    def _take(self, key: tuple[str, int, bool]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    def give_back(self, connection: _Connection) -> None:
        """A connection whose last response was read whole and may carry the next."""
        idle = self._idle.setdefault(connection.key, [])
        if self.closed or connection.closed or len(idle) >= MAX_IDLE:
            connection.close()
        else:
            idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)


async def _connect(target: _Target, session: UpstreamSession) -> _Connection:
    """A new connection, each resolved address tried in turn (as aiohttp does), the last
    failure reported as the core knows failures."""
    loop = asyncio.get_running_loop()
    tls = _tls() if target.tls else None
    try:
        addresses = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectionResetError(f"could not resolve the upstream's host: {exc}") from None
    failure: OSError = ConnectionRefusedError(errno.ECONNREFUSED, "no address to connect to")
    for family, _, protocol, _, address in addresses:
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(target.key, session),
                address[0],
                address[1],
                family=family,
                proto=protocol,
                ssl=tls,
                server_hostname=target.host if tls is not None else None,
            )
            return connection
        except OSError as exc:
            failure = exc
    if failure.errno == errno.ECONNREFUSED:
        raise ConnectionRefusedError("upstream refused the connection")
    raise ConnectionResetError(f"could not connect to upstream: {failure}")


class _Pending:
    """`session.post(...)`: awaited it is the response; as a context manager the response is
    released on the way out (its connection kept when the body was read whole)."""

    __slots__ = ("_call", "_response")

    def __init__(self, call: Any) -> None:
        self._call = call
        self._response: UpstreamResponse | None = None

    def __await__(self) -> Generator[Any, None, UpstreamResponse]:
        return self._call.__await__()

    async def __aenter__(self) -> UpstreamResponse:
        self._response = await self._call
        return self._response

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._response is not None:
            self._response.release()


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one exchange at a time."""

    def __init__(self, key: tuple[str, int, bool], session: UpstreamSession) -> None:
        self.key = key
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.response: UpstreamResponse | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's are not subclasses of asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        self.response.feed(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.session.forget(self)
        if self.response is not None:
            self.response.lost()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    async def send(self, request: bytes) -> UpstreamResponse:
        assert self.transport is not None
        response = UpstreamResponse(self)
        self.response = response
        self.transport.write(request)
        try:
            await response.head
        except BaseException:  # refused mid-way, cut, cancelled: nothing more will be read here
            self.close()
            raise
        return response

    def done(self, response: UpstreamResponse, reusable: bool) -> None:
        """The response was read whole (or abandoned): keep the connection for the next call
        or close it."""
        if self.response is not response:
            return
        self.response = None
        if reusable and not self.closed:
            self.session.give_back(self)
        else:
            self.close()


class Carrier(Protocol):
    """What a response needs of the connection it arrives on (a pooled `_Connection`, or the
    health probe's own)."""

    def done(self, response: UpstreamResponse, reusable: bool) -> None: ...

    def close(self) -> None: ...


class UpstreamResponse:
    """Status and headers once the head arrived; the body decoded (Content-Length, chunked or
    until close) as it comes, read whole or line by line."""

    __slots__ = (
        "_body",
        "_broken",
        "_chunk_left",
        "_complete",
        "_connection",
        "_cut",
        "_keep_alive",
        "_left",
        "_mode",
        "_raw",
        "_waiter",
        "head",
        "headers",
        "status",
    )

    def __init__(self, connection: Carrier) -> None:
        self._connection: Carrier | None = connection
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.headers: dict[str, str] = {}
        self._raw = bytearray()
        """Bytes not yet parsed: the head while it arrives, then a chunked body's framing."""
        self._body = bytearray()
        self._mode = ""
        self._left = 0
        self._chunk_left = -1
        """Bytes left in the current chunk (with its closing CRLF); -1 while a size line is due,
        _TRAILERS after the last chunk."""
        self._complete = False
        self._broken = False
        self._cut = "upstream response was cut short"
        """Why a broken body is broken, as the reset raised says."""
        self._keep_alive = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def content(self) -> UpstreamResponse:
        return self

    # -- fed by the connection

    def feed(self, data: bytes) -> None:
        if not self.head.done():
            self._raw += data
            try:
                started = self._parse_head()
            except ValueError as exc:
                self.head.set_exception(ConnectionResetError(f"upstream answer unreadable: {exc}"))
                return
            if not started:
                return
            data, self._raw = bytes(self._raw), bytearray()
            self.head.set_result(None)
        if self._mode == "chunked":
            self._raw += data
            self._dechunk()
        elif self._mode == "length":
            if len(data) > self._left:
                self._keep_alive = False  # more than it announced: the next answer would be garbled
                data = data[: self._left]
            self._body += data
            self._left -= len(data)
            if self._left == 0:
                self._complete = True
        elif self._mode == "close":
            self._body += data
        if len(self._body) > MAX_BODY:
            self._broken, self._complete, self._keep_alive = True, False, False
            self._cut = f"upstream answer over {MAX_BODY // 2**20} MiB"
            if self._connection is not None:
                self._connection.close()
        self._wake()

    def lost(self) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectionResetError("upstream closed the connection before answering"))
            return
        if self._mode == "close" and not self._broken:
            self._complete = True
        elif not self._complete:
            self._broken = True
        self._keep_alive = False
        self._wake()

    def _parse_head(self) -> bool:
        while True:
            end = self._raw.find(b"\r\n\r\n")
            if end < 0:
                if len(self._raw) > MAX_HEAD:
                    raise ValueError("response head too long")
                return False
            lines = self._raw[:end].decode("latin-1").split("\r\n")
            del self._raw[: end + 4]
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
                raise ValueError("not an HTTP/1 response")
            status = int(rest[:3])
            if 100 <= status < 200:  # 100 Continue and friends: the real answer follows
                continue
            break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.status, self.headers = status, headers
        connection = headers.get("connection", "").lower()
        self._keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if status in NO_BODY:
            self._mode, self._complete = "length", True
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode = "chunked"
        elif "content-length" in headers:
            self._mode, self._left = "length", int(headers["content-length"])
            self._complete = self._left == 0
        else:
            self._mode, self._keep_alive = "close", False
        return True

    def _dechunk(self) -> None:
        raw = self._raw
        while raw and not self._complete:
            if self._chunk_left == _TRAILERS:
                end = 0 if raw.startswith(b"\r\n") else raw.find(b"\r\n\r\n") + 2
                if end < 2 and not raw.startswith(b"\r\n"):
                    return
                self._complete = True
                self._keep_alive = self._keep_alive and len(raw) == end + 2
                raw.clear()
                return
            if self._chunk_left < 0:
                end = raw.find(b"\r\n")
                if end < 0:
                    return
                try:
                    size = int(raw[:end].split(b";", 1)[0], 16)
                except ValueError:
                    self._keep_alive, self._broken = False, True
                    return
                del raw[: end + 2]
                if size == 0:  # the last chunk: trailers (usually none) and an empty line follow
                    self._chunk_left = _TRAILERS
                    continue
                self._chunk_left = size + 2
            take = min(self._chunk_left, len(raw))
            self._body += raw[: min(take, max(0, self._chunk_left - 2))]  # not the closing CRLF
            del raw[:take]
            self._chunk_left -= take
            if self._chunk_left == 0:
                self._chunk_left = -1

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _more(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- read by the caller

    async def readline(self) -> bytes:
        """The body's next line (with its newline), the rest at its end, b"" after it."""
        body = self._body
        while True:
            end = body.find(b"\n")
            if end >= 0:
                line = bytes(body[: end + 1])
                del body[: end + 1]
                return line
            if self._complete:
                line = bytes(body)
                body.clear()
                self._finished()
                return line
            if self._broken:
                raise ConnectionResetError(self._cut)
            await self._more()

    async def read(self) -> bytes:
        while not self._complete:
            if self._broken:
                raise ConnectionResetError(self._cut)
            await self._more()
        data = bytes(self._body)
        self._body.clear()
        self._finished()
        return data

    async def json(self, content_type: str | None = None) -> Any:
        return orjson.loads(await self.read())

    def _finished(self) -> None:
        if self._connection is not None:
            self._connection.done(self, self._keep_alive)
            self._connection = None

    def release(self) -> None:
        """Done with it: the connection is kept if the body was read whole, else closed."""
        if self._connection is not None:
            self._connection.done(self, self._complete and self._keep_alive)
            self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.done(self, False)
            self._connection = None
