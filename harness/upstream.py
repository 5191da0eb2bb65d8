"""Calls to an OpenAI-compatible upstream with aiohttp, failures as `ModelCallError`.

A streaming call returns once the first content event has arrived and parsed, so the core's
retry and fallback still apply to everything before the first byte goes to the client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from resilience_core import ModelCallError, Settleable


class StreamStart(Settleable):
    """An upstream stream whose first event arrived: the rest is read with `events()`.

    Settleable: the breaker and metrics of its model judge the attempt when `settle(failed)`
    is called at the stream's end, not at its first byte.
    """

    def __init__(self, response: aiohttp.ClientResponse, first: bytes, model: str) -> None:
        super().__init__()
        self.response = response
        self.first = first
        self.model = model

    async def events(self, idle_timeout: float) -> AsyncIterator[bytes]:
        """The remaining `data:` lines, raising on idle timeout, bad JSON or a missing [DONE]."""
        try:
            while True:
                line = await asyncio.wait_for(self.response.content.readline(), idle_timeout)
                if not line:
                    raise ModelCallError("upstream stream ended without [DONE]", status=502)
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return
                _parse_chunk(payload)
                yield payload
        finally:
            self.response.release()

    def close(self) -> None:
        self.response.close()


def _parse_chunk(payload: bytes) -> dict[str, Any]:
    try:
        chunk = json.loads(payload)
    except ValueError:
        raise ModelCallError("upstream sent a malformed stream event", status=502) from None
    if not isinstance(chunk, dict) or "choices" not in chunk:
        if isinstance(chunk, dict) and "error" in chunk:
            raise ModelCallError("upstream reported an error mid-stream", status=502)
        raise ModelCallError("upstream sent an unexpected stream event", status=502)
    return chunk


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    code = None
    try:
        body = await response.json(content_type=None)
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    except (ValueError, aiohttp.ClientError):
        pass
    retry_after = None
    header = response.headers.get("Retry-After")
    if header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    response.release()
    raise ModelCallError(
        f"upstream answered {response.status}",
        status=response.status,
        code=code,
        retry_after=retry_after,
    )


class Upstream:
    """One deployment: a base URL, a model name, an optional key, and a shared session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        model: str,
        api_key: str | None,
        first_token_timeout: float | None = None,
    ):
        self.session = session
        self.first_token_timeout = first_token_timeout
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def __call__(self, body: dict[str, Any]) -> Any:
        payload = {**body, "model": self.model}
        payload.pop("fallbacks", None)
        try:
            if payload.get("stream"):
                return await self._stream(payload)
            async with self.session.post(self.url, json=payload, headers=self.headers) as response:
                await _raise_for_status(response)
                raw = await response.read()
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionError(f"connection to upstream failed: {type(exc).__name__}") from None
        except aiohttp.ClientPayloadError:
            raise ConnectionError("upstream response was cut short") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise ModelCallError("upstream sent malformed JSON", status=502) from None
        if not isinstance(answer, dict) or not answer.get("choices"):
            raise ModelCallError("upstream answer has no choices", status=502)
        return answer

    async def _stream(self, payload: dict[str, Any]) -> StreamStart:
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.first_token_timeout):  # headers and the first event
                response = await self.session.post(self.url, json=payload, headers=self.headers)
                await _raise_for_status(response)
                return await self._first_event(response)
        except TimeoutError:
            if response is not None:
                response.close()
            raise ModelCallError("no first token in time", status=504) from None
        except BaseException:
            if response is not None:
                response.close()
            raise

    async def _first_event(self, response: aiohttp.ClientResponse) -> StreamStart:
        while True:
            line = await response.content.readline()
            if not line:
                raise ModelCallError("upstream stream ended before the first token", status=502)
            line = line.strip()
            if line.startswith(b"data:"):
                payload_bytes = line[5:].strip()
                if payload_bytes == b"[DONE]":
                    raise ModelCallError("upstream stream had no content", status=502)
                _parse_chunk(payload_bytes)
                return StreamStart(response, payload_bytes, self.model)
