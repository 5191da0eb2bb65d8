"""HTTP without sockets: the part of the gateway's `UpstreamSession` its upstream calls use,
answered by simulated endpoints through simulated proxies, in virtual time.

The gateway's own `Upstream` runs on it unchanged, so its error mapping, stream reading, first
token timeout and prefill learning are what the simulation judges. Failures take that
client's forms: a refused connection is `ConnectionRefusedError`, a connection lost before the
headers or a body cut short `ConnectionResetError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Generator
from types import TracebackType
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from harness.endpoints.behaviour import EndpointState, respond
from harness.sim.network import Link, SimNetwork

HEAD_BYTES = 120
"""What a response's status line and headers weigh on the wire (for bandwidth and byte limits)."""


def _refused(host: str) -> ConnectionRefusedError:
    return ConnectionRefusedError(f"upstream refused the connection ({host})")


class _Head:
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


class _End:
    """The response ended cleanly."""


END = _End()


class SimContent:
    """`response.content`: lines of the body as they arrive."""

    def __init__(self, response: SimResponse) -> None:
        self.response = response

    async def readline(self) -> bytes:
        return await self.response.readline()


class SimResponse:
    """What `session.post` gives: status and headers once they arrived, the body as it comes."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.status = 0
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
        self.content = SimContent(self)
        self._buffer = bytearray()
        self._ended = False
        self._broken = False
        self._head = asyncio.get_running_loop().create_future()
        self._more: asyncio.Future[None] | None = None
        link.reader = self._receive
        link.on_break = self._broke

    def _receive(self, item: Any) -> None:
        if isinstance(item, _Head):
            self.status = item.status
            self.headers = CIMultiDictProxy(CIMultiDict(item.headers))
            if not self._head.done():
                self._head.set_result(None)
            return
        if item is END:
            self._ended = True
            self.link.close()
        else:
            self._buffer += item
        self._wake()

    def _broke(self) -> None:
        self._broken = True
        if not self._head.done():
            self._head.set_exception(ConnectionResetError("upstream closed the connection before answering"))
        self._wake()

    def _wake(self) -> None:
        if self._more is not None and not self._more.done():
            self._more.set_result(None)

    async def headers_arrived(self) -> None:
        await self._head

    async def _wait(self) -> None:
        self._more = asyncio.get_running_loop().create_future()
        await self._more

    async def readline(self) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if self._ended:
                line = bytes(self._buffer)
                self._buffer.clear()
                return line
            if self._broken:
                raise ConnectionResetError("upstream response was cut short")
            await self._wait()

    async def read(self) -> bytes:
        while not self._ended:
            if self._broken:
                raise ConnectionResetError("upstream response was cut short")
            await self._wait()
        body = bytes(self._buffer)
        self._buffer.clear()
        return body

    async def json(self, content_type: str | None = "application/json") -> Any:
        return json.loads(await self.read())

    def release(self) -> None:
        if not self._ended:
            self.link.close()

    def close(self) -> None:
        self.link.close()


class SimWire:
    """The endpoint's side of one exchange: `respond` writes here, the link carries it back."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.streaming = False

    def reset(self) -> None:
        self.link.break_off()
        raise ConnectionResetError("simulated reset before headers")

    def hang_up(self) -> None:
        if not self.link.closed:
            self.link.send_back_close()

    async def json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        head = {"Content-Type": "application/json", **(headers or {})}
        self._whole(status, head, payload)

    async def text(self, status: int, text: str, content_type: str) -> None:
        self._whole(status, {"Content-Type": content_type}, text.encode())

    def _whole(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        with contextlib.suppress(ConnectionResetError):  # aiohttp's server does not tell the handler
            self.link.send_back(_Head(status, headers), HEAD_BYTES)
            self.link.send_back(payload, len(payload))
            self.link.send_back(END, 0)

    async def start_stream(self) -> None:
        if not self.streaming:
            self.streaming = True
            self.link.send_back(_Head(200, {"Content-Type": "text/event-stream"}), HEAD_BYTES)

    async def write(self, data: bytes) -> None:
        self.link.send_back(data, len(data))

    async def end(self) -> None:
        self.link.send_back(END, 0)


class SimSession:
    """`session.post(url, json=..., headers=...)` to the simulated endpoint behind `url`'s proxy."""

    def __init__(
        self, network: SimNetwork, endpoints: dict[str, EndpointState], urls: dict[str, str]
    ) -> None:
        self.network = network
        self.endpoints = endpoints
        self.routes = sorted(((url.rstrip("/"), model) for model, url in urls.items()), reverse=True)
        """(base URL, model), longest first."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def post(self, url: str, *, json: Any = None, headers: dict[str, str] | None = None) -> SimRequest:
        return SimRequest(self, url, json)

    def _model(self, url: str) -> str | None:
        return next((model for base, model in self.routes if url.startswith(base + "/")), None)

    async def send(self, url: str, body: Any) -> SimResponse:
        model = self._model(url)
        if model is None:
            raise _refused(url)
        size = len(json.dumps(body)) + 200
        try:
            link = self.network.proxies[model].open(size)
        except ConnectionRefusedError:
            raise _refused(model) from None
        response = SimResponse(link)
        try:
            try:
                await link.send_request(size)
            except ConnectionResetError:
                raise ConnectionResetError("upstream closed the connection before answering") from None
            link.arm_downstream()
            task = asyncio.get_running_loop().create_task(self._respond(model, body, link))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            await response.headers_arrived()
        except BaseException:
            link.close()
            raise
        return response

    async def _respond(self, model: str, body: Any, link: Link) -> None:
        with contextlib.suppress(ConnectionResetError):
            await respond(self.endpoints[model], body, SimWire(link))

    async def close(self) -> None:
        self.closed = True


class SimRequest:
    """What `post` returns: awaited for the response, or used as `async with`."""

    def __init__(self, session: SimSession, url: str, body: Any) -> None:
        self.session = session
        self.url = url
        self.body = body
        self.response: SimResponse | None = None

    def __await__(self) -> Generator[Any, None, SimResponse]:
        return self.session.send(self.url, self.body).__await__()

    async def __aenter__(self) -> SimResponse:
        self.response = await self.session.send(self.url, self.body)
        return self.response

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.response is not None:
            self.response.release()
