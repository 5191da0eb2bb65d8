"""The gateway's front door on a real stack, byte by byte: the chat route's common case is
answered by `http/front.py`, everything else by aiohttp on the same connection, in order."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.gateway.launch import GROUP, gateway_config
from harness.run import GatewayProcess
from harness.stack import start_stack
from harness.stack.local import Stack

CHAT = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(1, tmp_path_factory.mktemp("front"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    config = {**gateway_config(stack, "resilient"), "client_timeout": 2.0}
    process = GatewayProcess.start(config, tmp_path_factory.mktemp("front-gateway"))
    try:
        yield process
    finally:
        process.stop()


def connect(gateway: GatewayProcess) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def chat_request(body: Any = CHAT, *, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"POST /v1/chat/completions {version}\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload


class Reader:
    """Responses off a raw socket: status, headers (lower-case names) and the body, framed by
    Content-Length, chunked or the connection's end."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._more():
                raise EOFError(self.buffer)
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._more():
                raise EOFError(self.buffer)
        found, self.buffer = self.buffer[:count], self.buffer[count:]
        return found

    def response(self) -> tuple[int, dict[str, str], bytes]:
        head = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return self.response()
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        if "content-length" in headers:
            return status, headers, self._exactly(int(headers["content-length"]))
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self._until(b"\r\n"), 16):
                body += self._exactly(size)
                assert self._exactly(2) == b"\r\n"
            assert self._exactly(2) == b"\r\n"
            return status, headers, body
        while self._more():
            pass
        body, self.buffer = self.buffer, b""
        return status, headers, body

    def closed(self) -> bool:
        return not self.buffer and not self._more()


def answered(status: int, body: bytes) -> str:
    assert status == 200, body
    return str(json.loads(body)["choices"][0]["message"]["content"])


def test_one_connection_carries_chat_requests_then_other_routes_then_chat_again(gateway):
    with connect(gateway) as sock:
        reader = Reader(sock)
        for _ in range(3):  # the front's own answers, on one kept connection
            sock.sendall(chat_request())
            status, headers, body = reader.response()
            assert answered(status, body) and headers["x-served-by"] and "date" in headers
            assert "server" not in headers  # the front's answer, not aiohttp's
        # another route hands the connection to aiohttp, which answers it and what follows
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = reader.response()
        assert status == 200 and json.loads(body)["data"]
        sock.sendall(chat_request())
        status, headers, body = reader.response()
        assert answered(status, body) and "aiohttp" in headers.get("server", "")


def test_pipelined_requests_are_answered_in_order_each_whole(gateway):
    with connect(gateway) as sock:
        reader = Reader(sock)
        bad = chat_request(b"{not json")
        sock.sendall(chat_request() + bad + chat_request({"model": GROUP, "messages": []}) + chat_request())
        statuses = [reader.response()[0] for _ in range(4)]
        assert statuses == [200, 400, 400, 200]


def test_a_request_arriving_a_byte_at_a_time_is_answered(gateway):
    with connect(gateway) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in chat_request():
            sock.send(bytes([byte]))
        status, _, body = Reader(sock).response()
        assert answered(status, body)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # a chunked body, HTTP/1.0, Expect: aiohttp's cases, answered as before
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%b\r\n0\r\n\r\n"
            % (len(json.dumps(CHAT)), json.dumps(CHAT).encode()),
            200,
        ),
        (chat_request(version="HTTP/1.0"), 200),
        (chat_request(extra="Expect: 100-continue\r\n"), 200),
        (chat_request(extra="Connection: close\r\n"), 200),
        (chat_request(b"hello").replace(b"application/json", b"text/plain"), 415),
        (chat_request(b"x" * (8 * 1024 * 1024 + 1)), 413),
        (chat_request(b"{").replace(b"Content-Length", b"Content-Length: 2\r\nContent-Length"), 400),
        # both framings (a smuggling vector): aiohttp refuses it, the front never guesses
        (chat_request(b"0\r\n\r\n", extra="Transfer-Encoding: chunked\r\n"), 400),
        (b"GARBAGE\r\n\r\n", 400),
        # not JSON by RFC 8259 on aiohttp's path as on the front's (the standard library took it)
        (chat_request(json.dumps({**CHAT, "temperature": math.nan}).encode(), version="HTTP/1.0"), 400),
    ],
    ids=[
        "chunked",
        "http-1.0",
        "expect",
        "close",
        "text-plain",
        "too-large",
        "two-lengths",
        "te-and-length",
        "garbage",
        "nan-http-1.0",
    ],
)
def test_requests_outside_the_common_case_get_aiohttps_answer(gateway, request_bytes, status):
    with connect(gateway) as sock:
        sock.sendall(request_bytes)
        got, headers, body = Reader(sock).response()
        assert got == status, body
        assert "aiohttp" in headers.get("server", "")  # answered by aiohttp, not guessed at by the front


def test_a_stream_is_relayed_chunked_and_ends_with_done(gateway):
    with connect(gateway) as sock:
        reader = Reader(sock)
        sock.sendall(chat_request({**CHAT, "stream": True}))
        status, headers, body = reader.response()
        assert status == 200 and headers["content-type"] == "text/event-stream"
        events = [line.removeprefix("data: ") for line in body.decode().split("\n\n") if line]
        assert events[-1] == "[DONE]"
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
        assert text
        sock.sendall(chat_request())  # the connection is kept after a stream
        assert answered(*reader.response()[::2])


def test_a_client_leaving_mid_stream_does_not_stop_the_gateway(gateway):
    for _ in range(5):
        with connect(gateway) as sock:
            sock.sendall(chat_request({**CHAT, "stream": True}))
            sock.recv(10)
    with connect(gateway) as sock:
        sock.sendall(chat_request())
        assert answered(*Reader(sock).response()[::2])


def test_an_idle_kept_connection_is_closed_after_the_client_timeout(gateway):
    with connect(gateway) as sock:
        reader = Reader(sock)
        sock.sendall(chat_request())
        assert answered(*reader.response()[::2])
        started = time.monotonic()
        assert reader.closed()  # the gateway hangs up: client_timeout is 2 s here
        assert 1.5 < time.monotonic() - started < 5


def test_a_stopped_gateway_closes_its_front_connections(stack, tmp_path: Path):
    process = GatewayProcess.start(gateway_config(stack, "resilient"), tmp_path)
    try:
        with connect(process) as sock:
            sock.sendall(chat_request())
            reader = Reader(sock)
            assert answered(*reader.response()[::2])
            process.stop()
            assert reader.closed()
    finally:
        process.stop()
