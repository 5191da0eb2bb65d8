"""Calls to an OpenAI-compatible upstream, failures classified for the core.

A streaming call returns once its first *content* arrived (the commit point): a role-only or
empty first chunk commits nothing, so anything that fails before the first content token is
retried or failed over without the client seeing a byte. Failures are the core's vocabulary:
`ConnectionRefusedError` (nobody listens), `ConnectionResetError` (the connection broke),
`ModelCallError` with the status and a known provider code (never the provider's own text
copied through), timeouts as status 504.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import orjson

from harness.gateway.upstream_client import UpstreamResponse, UpstreamSession
from resilience_core import ModelCallError, Settleable

KNOWN_CODES = frozenset(
    {
        "context_length_exceeded",
        "content_filter",
        "content_policy_violation",
        "invalid_prefill",
        "invalid_request_error",
        "rate_limit_exceeded",
        "insufficient_quota",
        "overloaded",
        "server_error",
        "model_not_found",
        "invalid_api_key",
    }
)
"""Provider error codes the gateway understands and passes on; any other is dropped."""
RESET_HEADERS = (
    "retry-after",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-reset",
)


class StreamStart(Settleable):
    """An upstream stream whose first content arrived: `first` is every event up to and including
    it (role-only chunks first), the rest comes from `events()`.

    Settleable: the breaker and metrics of its model judge the attempt when `settle(failed)`
    is called at the stream's end, not at its first byte.
    """

    def __init__(self, response: UpstreamResponse, first: list[bytes], model: str) -> None:
        super().__init__()
        self.response = response
        self.first = first
        self.model = model
        self.malformed = 0
        """Events skipped because they were not JSON (`malformed_events: skip`)."""

    async def events(
        self, idle_timeout: float, skip_malformed: bool = True
    ) -> AsyncIterator[tuple[bytes, dict[str, Any]]]:
        """The remaining `data:` payloads, each with its parsed chunk, until `[DONE]` or the
        body's end; raises on a gap longer than `idle_timeout`, a cut connection, or an in-band
        error event. A body that ends cleanly without `[DONE]` after a finish_reason is a
        complete stream (nothing was lost)."""
        finished = False
        idle = _IdleWatch(idle_timeout)
        try:
            while True:
                line = await idle.read(self.response.content.readline())
                if not line:
                    if finished:
                        return
                    raise ModelCallError("upstream stream ended before its answer did", status=502)
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return
                try:
                    chunk = parse_chunk(payload)
                except MalformedEvent:
                    if not skip_malformed:
                        raise ModelCallError("upstream sent a malformed stream event", status=502) from None
                    self.malformed += 1
                    continue
                finished = finished or _finishes(chunk)
                yield payload, chunk
        finally:
            idle.close()
            self.response.release()

    def close(self) -> None:
        self.response.close()


class _IdleWatch:
    """Times out a read that waited `idle` seconds for the upstream, with one timer re-armed
    lazily (per idle period, not per line: `wait_for` makes a task per line, a rescheduled
    timeout a timer per line). Never armed across the relay's own writes to the client."""

    __slots__ = ("fired", "handle", "idle", "loop", "since", "task", "waiting")

    def __init__(self, idle: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.idle = idle
        self.since = self.loop.time()
        self.waiting = False
        self.fired = False
        self.handle = self.loop.call_at(self.since + idle, self._check)

    async def read(self, pending: Awaitable[bytes]) -> bytes:
        self.since = self.loop.time()
        self.waiting = True
        try:
            return await pending
        except asyncio.CancelledError:
            if self.fired and self.task is not None and self.task.uncancel() == 0:
                raise TimeoutError(f"no upstream event for {self.idle:g} s") from None
            raise
        finally:
            self.waiting = False

    def _check(self) -> None:
        now = self.loop.time()
        if self.waiting and now - self.since >= self.idle and self.task is not None:
            self.fired = True
            self.task.cancel()
            return
        self.handle = self.loop.call_at((self.since if self.waiting else now) + self.idle, self._check)

    def close(self) -> None:
        self.handle.cancel()


class MalformedEvent(ValueError):
    """A `data:` line that is not a JSON object."""


def parse_chunk(payload: bytes) -> dict[str, Any]:
    try:
        chunk = orjson.loads(payload)
    except ValueError:
        raise MalformedEvent(payload[:80]) from None
    if not isinstance(chunk, dict):
        raise MalformedEvent(payload[:80])
    if "error" in chunk and "choices" not in chunk:
        raise ModelCallError("upstream reported an error mid-stream", status=502, code=known(chunk["error"]))
    return chunk


def has_content(chunk: dict[str, Any]) -> bool:
    return any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or [])


def calls_tool(chunk: dict[str, Any]) -> bool:
    return any((c.get("delta") or {}).get("tool_calls") for c in chunk.get("choices") or [])


def known(error: Any) -> str | None:
    """The provider's error code when it is one we know, else None (bounded, nothing leaked)."""
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code in KNOWN_CODES else None


def retry_after(headers: Any) -> float | None:
    """Seconds until the provider wants to be asked again: Retry-After, or a reset header
    (`1.5`, `1.5s`, `200ms`), the earliest of those present."""
    found = []
    for name in RESET_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        text = value.strip().lower()
        try:
            if text.endswith("ms"):
                found.append(float(text[:-2]) / 1000)
            else:
                found.append(float(text.removesuffix("s")))
        except ValueError:
            continue
    return min(found) if found else None


class ProviderRejected(ModelCallError):
    """A 4xx the provider explained: its message, scrubbed and bounded, is worth passing on (the
    client must fix its request, and "upstream rejected the request" says nothing of how)."""

    def __init__(
        self, message: str, *, status: int, code: str | None, detail: str, param: str | None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.detail = detail
        self.param = param


DETAIL_LIMIT = 300
"""Characters of a provider's message passed on: enough for "maximum context length is 8192 tokens,
your messages resulted in 9000", not a log dump."""
_SECRET = re.compile(
    r"\b(?:sk|pk|rk|key|token|api[-_]?key)[-_][A-Za-z0-9_\-]{6,}|\bBearer\s+\S+|\b[a-z][a-z0-9+.-]*://\S+"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\b[A-Za-z0-9]{32,}\b",
    re.IGNORECASE,
)
"""Keys, bearer tokens, URLs (hosts, paths, query keys), IP addresses, long opaque ids."""


def scrubbed(message: Any) -> str | None:
    """A provider's error message safe to show a client: one line, printable, secrets and
    addresses replaced, at most DETAIL_LIMIT characters; None when there is nothing to show."""
    if not isinstance(message, str):
        return None
    text = _SECRET.sub("[redacted]", " ".join(message.split()))
    text = "".join(ch for ch in text if ch.isprintable())
    if len(text) > DETAIL_LIMIT:
        text = text[: DETAIL_LIMIT - 3] + "..."
    return text or None


async def _raise_for_status(response: UpstreamResponse) -> None:
    if response.status < 400:
        return
    code = detail = param = None
    try:
        body = await response.json(content_type=None)
        error = body.get("error") if isinstance(body, dict) else None
        code = known(error)
        if isinstance(error, dict):
            detail = scrubbed(error.get("message"))
            param = error.get("param") if isinstance(error.get("param"), str) else None
    except (ValueError, ConnectionError):
        pass
    wait = retry_after(response.headers)
    response.release()
    message = f"upstream answered {response.status}"
    if detail is not None and 400 <= response.status < 500 and response.status != 429:
        raise ProviderRejected(
            message, status=response.status, code=code, detail=detail, param=scrubbed(param)
        )
    raise ModelCallError(message, status=response.status, code=code, retry_after=wait)


def parse_answer(raw: bytes, source: str) -> dict[str, Any]:
    """A whole (non-streamed) answer, or the ModelCallError of one no healthy model sends."""
    try:
        answer = orjson.loads(raw)
    except ValueError:
        raise ModelCallError(f"{source} sent malformed JSON: its answer is not JSON", status=502) from None
    if not isinstance(answer, dict) or not answer.get("choices"):
        raise ModelCallError(f"{source} answer has no choices", status=502)
    return answer


class Upstream:
    """One deployment: a base URL, a model name, an optional key, and a shared session."""

    def __init__(
        self,
        session: UpstreamSession,
        base_url: str,
        model: str,
        api_key: str | None,
        first_token_timeout: float | None = None,
        prefill: bool = True,
    ):
        self.session = session
        self.first_token_timeout = first_token_timeout
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.prefill = prefill
        """Whether it accepts an assistant prefill; set false at its first refusal."""

    async def __call__(self, body: dict[str, Any]) -> Any:
        payload = {**body, "model": self.model}
        payload.pop("fallbacks", None)
        if _ends_with_assistant(payload) and not self.prefill:
            raise ModelCallError(
                "this model does not continue a prefilled answer", status=400, code="invalid_prefill"
            )
        if payload.get("stream"):
            return await self._stream(payload)
        async with self.session.post(self.url, json=payload, headers=self.headers) as response:
            await self._check(response, payload)
            raw = await response.read()
        return parse_answer(raw, "upstream")

    async def _check(self, response: UpstreamResponse, payload: dict[str, Any]) -> None:
        try:
            await _raise_for_status(response)
        except ModelCallError as exc:
            if exc.code == "invalid_prefill" and _ends_with_assistant(payload):
                self.prefill = False  # learned: the next cut stream is not continued here
            raise

    async def _stream(self, payload: dict[str, Any]) -> StreamStart:
        response: UpstreamResponse | None = None
        try:
            async with asyncio.timeout(self.first_token_timeout) as window:  # headers, first content
                response = await self.session.post(self.url, json=payload, headers=self.headers)
                await self._check(response, payload)
                return await self._first_content(response, _ends_with_assistant(payload), window)
        except TimeoutError:
            if response is not None:
                response.close()
            raise ModelCallError("no first token in time", status=504) from None
        except BaseException:
            if response is not None:
                response.close()
            raise

    async def _first_content(
        self, response: UpstreamResponse, continuation: bool, window: asyncio.Timeout
    ) -> StreamStart:
        """Read up to the commit point: the first content, or for a continuation the end of
        the answer (a cut that came after the last word leaves nothing to add but the end). A
        tool call is held until it is whole: its arguments are JSON, useless in part, and no
        model can continue another's, so a call cut on the way is failed over from scratch
        instead of reaching the client spliced or half-done. While a call is held, the first
        token's `window` becomes a gap limit: each fragment gives the call that long again."""
        before: list[bytes] = []
        calling = False
        while True:
            line = await response.content.readline()
            if not line:
                raise ConnectionResetError("upstream stream ended before its first token")
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                raise ModelCallError("upstream stream had no content", status=502)
            try:
                chunk = parse_chunk(payload)
            except MalformedEvent:
                continue  # skipped, as after the commit point
            before.append(payload)
            calling = calling or calls_tool(chunk)
            if calling:
                if self.first_token_timeout is not None:
                    window.reschedule(asyncio.get_running_loop().time() + self.first_token_timeout)
                if _finishes(chunk):
                    return StreamStart(response, before, self.model)
                continue
            if has_content(chunk) or (continuation and _finishes(chunk)):
                return StreamStart(response, before, self.model)


def _finishes(chunk: dict[str, Any]) -> bool:
    return any(c.get("finish_reason") for c in chunk.get("choices") or [])


def _ends_with_assistant(payload: dict[str, Any]) -> bool:
    messages = payload.get("messages")
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant"
