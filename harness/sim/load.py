"""The load in virtual time: the Locust user's open-loop schedule and reading, with the gateway's
chat route called in process instead of over HTTP.

Each user sends every `users / rate` seconds from its own offset, choosing a stream with its
own seeded random source, as `load/user.py` does; every request runs in its own task; the
answer is read by the same functions (`load.reading`) and recorded in the same columns. The
client waits `request_timeout` for the headers and between events (a `requests` read timeout);
when it gives up, the gateway is not cancelled: it finds out at its next write, as it would.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.gateway.app import Gateway
from harness.gateway.http.handlers import Reply
from harness.gateway.http.relay import ClientGone, error_event, stream_answer
from harness.load.reading import read_completion, read_stream
from harness.load.tools import TOOLS
from harness.scenario.model import Load

MAX_IN_FLIGHT_PER_USER = 500
"""As the Locust user: beyond this many requests in flight, a send is recorded as an overload."""


@dataclass
class _Exchange:
    """One request as its client sees it: the lines that arrived and when, and whether it left."""

    deadline: float
    lines: list[tuple[float, bytes]] = field(default_factory=list)
    gone: bool = False


@dataclass
class SimLoad:
    gateway: Gateway
    load: Load
    model: str
    t0: float
    duration: float
    seed: int
    records: list[dict[str, Any]] = field(default_factory=list)
    in_flight: dict[int, int] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    tool_rngs: dict[int, random.Random] = field(default_factory=dict)

    def arrivals(self) -> Iterator[tuple[float, int, bool]]:
        """(time, user, stream) of every request, in time order: each user on its fixed
        schedule, its stream choices from its own random source."""
        users, rate = self.load.users, self.load.rate
        interval = users / rate
        schedule: list[tuple[float, int, bool]] = []
        for user in range(users):
            rng = random.Random(self.seed * 7919 + user)
            at = self.t0 + interval * user / users
            while at < self.t0 + self.duration:
                schedule.append((at, user, rng.random() < self.load.stream_share))
                at += interval
        schedule.sort(key=lambda item: (item[0], item[1]))
        return iter(schedule)

    async def run(self) -> None:
        """Send on schedule, then wait for what is in flight (at most one request timeout)."""
        loop = asyncio.get_running_loop()
        for at, user, stream in self.arrivals():
            if at > loop.time():
                await asyncio.sleep(at - loop.time())
            if self.in_flight.get(user, 0) >= MAX_IN_FLIGHT_PER_USER:
                self._record(
                    {"t": round(at - self.t0, 6), "ok": False, "error_kind": "client_overload"}, user
                )
                continue
            task = loop.create_task(self.one(user, stream, self._offers_tools(user)))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=self.load.request_timeout)

    def _record(self, row: dict[str, Any], user: int) -> None:
        self.records.append({"user": user, **row})

    def _offers_tools(self, user: int) -> bool:
        """Drawn from a source of the user's own (as the Locust user does), so a scenario
        without tools keeps every other choice it had."""
        if self.load.tool_share <= 0:
            return False
        rng = self.tool_rngs.setdefault(user, random.Random(f"{self.seed}-tools-{user}"))
        return rng.random() < self.load.tool_share

    async def one(self, user: int, stream: bool, tools: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.in_flight[user] = self.in_flight.get(user, 0) + 1
        started = loop.time()
        context: dict[str, Any] = {"t": round(started - self.t0, 6), "stream": stream}
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": "Say something."}],
            "stream": stream,
        }
        if tools:
            body["tools"] = TOOLS
        exchange = _Exchange(started + self.load.request_timeout)
        served = loop.create_task(self._serve(body, started, exchange))
        try:
            while not served.done():
                left = exchange.deadline - loop.time()
                if left <= 0:
                    exchange.gone = True  # the client gives up; the gateway learns at its next write
                    context.update(ok=False, error_kind="timeout")
                    break
                await asyncio.wait({served}, timeout=left)
            else:
                reply = served.result()
                context.update(self._read(reply, exchange, started))
        finally:
            self.in_flight[user] -= 1
        context["latency_ms"] = round((loop.time() - started) * 1000, 3)
        self._record(context, user)

    async def _serve(self, body: dict[str, Any], started: float, exchange: _Exchange) -> Reply:
        """The gateway's chat route, and for a stream the relay's work, in process."""
        loop = asyncio.get_running_loop()
        reply = await self.gateway.chat.reply(body, started)
        if exchange.gone:
            if reply.stream is not None:  # as the HTTP handler: the client left before a byte
                reply.stream.settle(failed=False)
                reply.stream.close()
            return reply
        now = loop.time()
        exchange.deadline = now + self.load.request_timeout
        if reply.stream is not None:
            assert reply.rescue is not None

            async def send(payload: bytes) -> None:
                if exchange.gone:
                    raise ClientGone
                exchange.lines.append((loop.time(), b"data: " + payload))
                exchange.deadline = loop.time() + self.load.request_timeout

            policy = self.gateway.config.policies.stream
            try:
                failure = await stream_answer(
                    reply.stream, send, policy, reply.rescue, reply.model, now=loop.time
                )
            except ClientGone:
                return reply
            ending = error_event(failure).strip() if failure is not None else b"data: [DONE]"
            exchange.lines.append((loop.time(), ending))
        elif reply.as_events:
            assert reply.body is not None
            exchange.lines.append((now, b"data: " + json.dumps(reply.body).encode()))
            exchange.lines.append((now, b"data: [DONE]"))
        return reply

    def _read(self, reply: Reply, exchange: _Exchange, started: float) -> dict[str, Any]:
        """What the Locust user's `_read` finds, from the same reading functions."""
        headers = reply.headers
        found: dict[str, Any] = {
            "status": reply.status,
            "served_by": headers.get("x-served-by", ""),
            "attempts": headers.get("x-attempts", ""),
            "degraded": False,
        }
        if reply.status != 200:
            return {**found, "ok": False, "error_kind": f"http_{reply.status}"}
        claim = headers.get("x-degraded", "") == "true"
        if reply.stream is not None or reply.as_events:
            arrived = [0.0]

            def lines() -> Iterator[bytes]:
                for at, line in exchange.lines:
                    arrived[0] = at
                    yield line

            return {**found, **read_stream(lines(), started, claim, clock=lambda: arrived[0])}
        found["ttft_ms"] = round((asyncio.get_running_loop().time() - started) * 1000, 3)
        return {**found, **read_completion(json.dumps(reply.body).encode(), claim)}
