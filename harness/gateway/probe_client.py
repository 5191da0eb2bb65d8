"""Health probes over their own kept-alive connection, without the HTTP client library.

At 500 idle models the default policy sends 17 probes a second. Through aiohttp each cost
about 0.5 ms of CPU on our machines (a bare session sending nothing else used 1.07 % of a core
for them), over the 1 % budget for probing before the gateway did anything of its own. A probe
needs little of a client: one fixed request, encoded once, and of the answer its status and a
JSON body with `choices`. So each upstream gets one connection, kept open between probes, read
with the gateway's own response parser (`upstream_client.UpstreamResponse`). Anything it does
not expect fails the probe, as a broken answer would.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from harness.gateway.upstream import parse_answer
from harness.gateway.upstream_client import UpstreamResponse
from resilience_core import ModelCallError

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
    """One connection: a request written, its response read whole (parsed as the gateway's
    upstream client parses, `UpstreamResponse`)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True
        self.answered = False
        """Whether any byte of the current response arrived (then it is not retried)."""
        self._response: UpstreamResponse | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's are not subclasses of asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.answered = True
        if self._response is not None:
            self._response.feed(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._response is not None:
            self._response.lost()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def done(self, response: UpstreamResponse, reusable: bool) -> None:
        """The response was read whole (or given up): whether the connection may carry the next."""
        self.keep_alive = reusable
        self._response = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        if self.closed:
            raise ConnectionResetError("the probe's connection is closed")
        self.answered = False
        response = self._response = UpstreamResponse(self)
        self.transport.write(request)
        await response.head
        body = await response.read()
        if len(body) > MAX_BODY:
            self.keep_alive = False
            raise ModelCallError("probe answer unreadable: response body too long", status=502)
        return response.status, body
