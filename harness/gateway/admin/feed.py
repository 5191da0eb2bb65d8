"""Server-sent events of the gateway's state: built once per tick for every listener, pushed
promptly after a change, so any number of open dashboards costs one build a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger("harness.gateway.admin")

INTERVAL = 1.0
"""Seconds between pushes when nothing happens."""
MIN_GAP = 0.2
"""A flapping breaker pokes often; pushes stay at most five a second."""
MAX_LISTENERS = 16
RETRY_MS = 3000
"""Tells EventSource to wait this long before reconnecting: no reconnect storms."""


def to_json(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), default=str, allow_nan=False)


class StateFeed:
    """Samples traffic each tick and publishes the state as JSON to whoever follows.

    Usage::

        feed = StateFeed(gateway.state, gateway.sample_traffic)
        task = asyncio.create_task(feed.run())
        feed.poke()  # after an admin action
    """

    def __init__(
        self,
        build: Callable[[], dict[str, Any]],
        tick: Callable[[], None],
        *,
        interval: float = INTERVAL,
        min_gap: float = MIN_GAP,
        max_listeners: int = MAX_LISTENERS,
    ) -> None:
        self.build = build
        self.tick = tick
        self.interval = interval
        self.min_gap = min_gap
        self.max_listeners = max_listeners
        self.listeners = 0
        self.closed = False
        self.version = 0
        self.latest = ""
        self._wake = asyncio.Event()
        self._published = asyncio.Condition()

    def poke(self) -> None:
        """Publish soon (respecting the minimum gap): something changed."""
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0
        while not self.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            gap = self.min_gap - (loop.time() - last)
            if gap > 0:
                await asyncio.sleep(gap)
            try:
                self.tick()
                if self.listeners and not self.closed:
                    await self._publish(to_json(self.build()))
            except Exception:  # a bad tick must not silence every dashboard for good
                log.exception("building the admin state failed")
            last = loop.time()

    async def _publish(self, payload: str) -> None:
        async with self._published:
            self.latest = payload
            self.version += 1
            self._published.notify_all()

    async def follow(self) -> AsyncGenerator[str, None]:
        """A fresh state now, then every published one until the feed closes."""
        self.listeners += 1
        try:
            seen = self.version
            yield to_json(self.build())
            while True:
                async with self._published:
                    await self._published.wait_for(partial(self._newer_than, seen))
                    if self.closed:
                        return
                    seen, payload = self.version, self.latest
                yield payload
        finally:
            self.listeners -= 1

    def _newer_than(self, seen: int) -> bool:
        return self.closed or self.version > seen

    async def close(self) -> None:
        """End every stream (the server is shutting down) and the ticking loop."""
        self.closed = True
        self._wake.set()
        async with self._published:
            self._published.notify_all()


async def stream(request: web.Request, feed: StateFeed) -> web.StreamResponse:
    """`text/event-stream` of the state until the client leaves or the gateway stops."""
    if feed.listeners >= feed.max_listeners:
        return web.json_response(
            {"error": {"message": "too many dashboards connected", "type": "service_unavailable"}},
            status=503,
        )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    try:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        async with contextlib.aclosing(feed.follow()) as states:
            async for payload in states:
                await response.write(b"event: state\ndata: " + payload.encode() + b"\n\n")
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass
    return response
