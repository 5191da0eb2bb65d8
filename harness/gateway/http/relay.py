"""Sending an answer that is a stream: the upstream's events relayed as they come, a stream that
stalls, crawls or is cut after content went out continued on a model that accepts the answer so
far as a prefill, and only when none can, an in-band error without `[DONE]`, so no client ever
mistakes a truncated answer for a complete one. Also: a degraded answer as one event."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import aiohttp
import orjson
from aiohttp import web

from harness.gateway.config import StreamPolicy
from harness.gateway.upstream import has_content, parse_chunk
from resilience_core import ModelCallError

EVENT_STREAM = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
DONE = b"data: [DONE]\n\n"
"""The event that ends a complete answer (never sent after a cut one)."""


def event(payload: bytes) -> bytes:
    """One server-sent event carrying `payload`."""
    return b"data: " + payload + b"\n\n"


def degraded_events(value: dict[str, Any]) -> tuple[bytes, bytes]:
    """A degraded answer (`degraded_completion(..., stream=True)`) as a one-event stream."""
    return event(orjson.dumps(value)), DONE


Continue = Callable[[str, str, bool], Awaitable[tuple[str, Any] | None]]
"""Given the answer so far, the model whose stream failed, and whether to keep new requests off
it for a while: the model continuing it and its stream, or None when none can."""


class _Crawling(Exception):
    """The stream delivers fewer tokens a second than the floor."""


class Stream(Protocol):
    """What the relay reads: a started upstream stream (`upstream.StreamStart`)."""

    first: list[bytes]

    def events(
        self, idle_timeout: float, skip_malformed: bool = True
    ) -> AsyncIterator[tuple[bytes, dict[str, Any]]]: ...

    def settle(self, failed: bool) -> None: ...

    def close(self) -> None: ...


class ClientGone(Exception):
    """Writing to the client failed: it disconnected mid-stream."""


async def stream_answer(
    stream: Stream,
    send: Callable[[bytes], Awaitable[None]],
    policy: StreamPolicy,
    rescue: Continue,
    model: str,
    now: Callable[[], float] = time.monotonic,
) -> BaseException | None:
    """Relay an answer's events through `send`, rescuing it when it fails after the commit point;
    None once it is complete, else why it could not be finished (the caller ends the stream with
    an in-band error). Each stream is settled for the breaker and metrics of its model as ok,
    failed (when it fails, not when it ends), or not the model's doing when the client left
    (`send` raises `ClientGone`, which propagates). No socket here: the gateway's handler and
    the simulation share it."""
    sent: list[str] = []
    rescues = 0
    first = True
    failed_once = False
    while True:
        try:
            await _forward(stream, send, sent, policy, first, now)
            stream.settle(failed=False)
            return None
        except ClientGone:
            stream.settle(failed=False)  # the client left: says nothing about the model
            stream.close()
            raise
        except (ModelCallError, TimeoutError, _Crawling, aiohttp.ClientError, ConnectionError) as exc:
            stream.settle(failed=True)  # judged now, while it stalls, not when it ends
            stream.close()
            # A stalled or crawling model is slow now: new requests stay off it for a while (and
            # the continuation goes elsewhere). A first cut holds the model only when another is
            # free to continue (`continuation` decides); else the model that cut it may continue
            # it, once. Any later failure of this answer holds the model that failed, so each
            # further continuation goes to a model that has not: with two of three models
            # cutting, the third finishes the answer rather than a retry of the first.
            eject = isinstance(exc, TimeoutError | _Crawling) or failed_once
            failed_once = True
            continued = await rescue("".join(sent), model, eject) if rescues < policy.rescues else None
            if continued is None:
                return exc
            rescues += 1
            model, stream = continued
            first = False


async def relay(
    request: web.Request,
    stream: Stream,
    headers: dict[str, str],
    policy: StreamPolicy,
    rescue: Continue,
    model: str,
) -> web.StreamResponse:
    """`stream_answer` onto an HTTP response: `[DONE]` when the answer is complete, an in-band
    error and no `[DONE]` when it could not be, so no client mistakes a cut answer for a whole one."""
    response = web.StreamResponse(headers={**headers, **EVENT_STREAM})
    try:
        await response.prepare(request)
    except BaseException:
        stream.settle(failed=False)  # the client went before a byte: says nothing of the model
        stream.close()
        raise

    async def send(payload: bytes) -> None:
        try:
            await response.write(event(payload))
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            raise ClientGone from None

    try:
        failure = await stream_answer(stream, send, policy, rescue, model)
    except ClientGone:
        return response
    if failure is not None:
        await _write_quietly(response, error_event(failure))
        return response
    await _write_quietly(response, DONE)
    return response


async def _forward(
    stream: Stream,
    send: Callable[[bytes], Awaitable[None]],
    sent: list[str],
    policy: StreamPolicy,
    first: bool,
    now: Callable[[], float],
) -> None:
    """Relay `stream` to the client, keeping the content sent; a continuation's role-only
    opening is left out (the client already has the answer's start)."""
    started = now()
    tokens = 0
    for payload in stream.first:
        chunk = parse_chunk(payload)
        if first or has_content(chunk) or _finishes(chunk):
            tokens += _collect(chunk, sent)
            await send(payload)
    floor = policy.min_tokens_per_second
    async for payload, chunk in stream.events(policy.stall_after, policy.malformed_events == "skip"):
        tokens += _collect(chunk, sent)
        await send(payload)
        elapsed = now() - started
        if floor and elapsed >= policy.rate_window and tokens / elapsed < floor and not _finishes(chunk):
            raise _Crawling(f"{tokens / elapsed:.1f} tokens/s")


def _collect(chunk: dict[str, Any], sent: list[str]) -> int:
    found = 0
    for choice in chunk.get("choices") or []:
        text = (choice.get("delta") or {}).get("content")
        if text:
            sent.append(str(text))
            found += 1
    return found


def _finishes(chunk: dict[str, Any]) -> bool:
    return any(c.get("finish_reason") for c in chunk.get("choices") or [])


def error_event(exc: BaseException) -> bytes:
    """The in-band error event that ends a stream that could not be finished."""
    stalled = isinstance(exc, TimeoutError | _Crawling)
    message = "the model stream stalled" if stalled else "the model stream failed mid-answer"
    error = {"error": {"message": message, "type": "stream_error", "code": "stream_interrupted"}}
    return event(orjson.dumps(error))


async def send_degraded_events(
    request: web.Request, value: dict[str, Any], headers: dict[str, str]
) -> web.StreamResponse:
    """`degraded_events` onto an HTTP response."""
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
    await response.prepare(request)
    for frame in degraded_events(value):
        await response.write(frame)
    return response


def degraded_completion(text: str, stream: bool) -> dict[str, Any]:
    if stream:
        return {
            "object": "chat.completion.chunk",
            "model": "degraded",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}],
        }
    return {
        "object": "chat.completion",
        "model": "degraded",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


async def _write_quietly(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
        await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass
