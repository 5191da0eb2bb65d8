"""The Locust user: open-loop pacing, one greenlet per request, each answer checked and recorded.

Open-loop pacing: each user sends on a fixed schedule (rate / users per second) and every
request runs in its own greenlet, so the offered rate does not drop when latency rises. Every
request fires one Locust request event (the recorder is a listener), so the record count
equals Locust's own total. Imports locust: only `python -m harness.load` may import this.
"""

from __future__ import annotations

import random
import time
from typing import Any

import gevent
from locust import HttpUser, constant, task
from requests.adapters import HTTPAdapter

from harness.load.reading import read_completion, read_stream
from harness.load.tools import TOOLS

MAX_IN_FLIGHT_PER_USER = 500
IN_FLIGHT: set[gevent.Greenlet] = set()
"""Every request greenlet not yet finished, across users (gevent: one thread, no locks)."""


class Settings:
    """Filled from the command line before the users start (locust users take no arguments)."""

    rate = 10.0
    users = 1
    stream_share = 0.0
    tool_share = 0.0
    model = "chat"
    request_timeout = 30.0
    t0 = 0.0
    seed = 1
    stop_sending_at = 0.0
    headers: dict[str, str] = {}  # noqa: RUF012 (set once, before any user starts)


def _error_kind(status: int, exc: BaseException | None) -> str:
    if exc is not None:
        name = type(exc).__name__.lower()
        return "timeout" if "timeout" in name else "connection"
    return f"http_{status}"


class ChatUser(HttpUser):
    """Posts chat completions on a fixed schedule, each in its own greenlet."""

    wait_time = constant(0)

    def on_start(self) -> None:
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_IN_FLIGHT_PER_USER)
        self.client.mount("http://", adapter)
        local = ChatUser.count = getattr(ChatUser, "count", -1) + 1
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.index = worker * Settings.users + local
        self.rng = random.Random(Settings.seed * 7919 + self.index)
        self.tool_rng = random.Random(f"{Settings.seed}-tools-{self.index}")
        """Its own source: offering tools leaves every other choice as it was without them."""
        self.interval = Settings.users / Settings.rate
        self.next_at = Settings.t0 + self.interval * self.index / Settings.users
        self.in_flight: set[gevent.Greenlet] = set()
        self.done = False

    @task
    def paced(self) -> None:
        if self.next_at >= Settings.stop_sending_at:
            gevent.sleep(0.2)  # the main greenlet drains what is in flight, then quits
            return
        now = time.time()
        if now < self.next_at:
            gevent.sleep(self.next_at - now)
        self.next_at += self.interval
        stream = self.rng.random() < Settings.stream_share
        tools = Settings.tool_share > 0 and self.tool_rng.random() < Settings.tool_share
        if len(self.in_flight) >= MAX_IN_FLIGHT_PER_USER:
            self._report_overload(stream)
            return
        greenlet = gevent.spawn(self._one, stream, tools)
        self.in_flight.add(greenlet)
        IN_FLIGHT.add(greenlet)
        greenlet.link(self.in_flight.discard)
        greenlet.link(IN_FLIGHT.discard)

    def _report_overload(self, stream: bool) -> None:
        context = {
            "t": round(time.time() - Settings.t0, 6),
            "ok": False,
            "error_kind": "client_overload",
            "stream": stream,
            "user": self.index,
        }
        self.environment.events.request.fire(
            request_type="POST",
            name="chat",
            response_time=0,
            response_length=0,
            response=None,
            context=context,
            exception=RuntimeError("client overload"),
            start_time=time.time(),
            url="",
        )

    def _one(self, stream: bool, tools: bool = False) -> None:
        body: dict[str, Any] = {
            "model": Settings.model,
            "messages": [{"role": "user", "content": "Say something."}],
            "stream": stream,
        }
        if tools:
            body["tools"] = TOOLS
        started = time.time()
        context: dict[str, Any] = {"t": round(started - Settings.t0, 6), "stream": stream, "user": self.index}
        try:
            with self.client.post(
                "/v1/chat/completions",
                json=body,
                headers=Settings.headers,
                name="chat-stream" if stream else "chat",
                stream=stream,
                catch_response=True,
                context=context,
                timeout=Settings.request_timeout,
            ) as response:
                try:
                    self._read(response, stream, started, context)
                except Exception as exc:  # anything escaping here would vanish from the stats
                    context.update(ok=False, error_kind=f"client_{type(exc).__name__}")
                context["latency_ms"] = round((time.time() - started) * 1000, 3)
                # Locust reports a merged copy of `context`: update the one it will report.
                response.request_meta["context"].update(context)
                if context.get("ok"):
                    response.success()
                else:
                    response.failure(context.get("error_kind", "error"))
        except Exception as exc:
            context.update(ok=False, error_kind=_error_kind(0, exc))

    def _read(self, response: Any, stream: bool, started: float, context: dict[str, Any]) -> None:
        status = response.status_code or 0
        degraded_claim = response.headers.get("x-degraded", "") == "true"
        context.update(
            status=status,
            served_by=response.headers.get("x-served-by", ""),
            attempts=response.headers.get("x-attempts", ""),
            degraded=False,
        )
        if status != 200:
            context.update(ok=False, error_kind=_error_kind(status, response.error if status == 0 else None))
            return
        if stream:
            context.update(read_stream(response.iter_lines(), started, degraded_claim))
        else:
            body = response.content
            context["ttft_ms"] = round((time.time() - started) * 1000, 3)
            context.update(read_completion(body, degraded_claim))


def configure(args: Any) -> None:
    Settings.rate, Settings.users = args.rate, args.users
    Settings.stream_share, Settings.model = args.stream_share, args.model
    Settings.tool_share = args.tool_share
    Settings.request_timeout, Settings.seed = args.request_timeout, args.seed
    Settings.t0 = args.t0 or time.time()
    Settings.headers = dict(_header(text) for text in args.header)
    Settings.stop_sending_at = Settings.t0 + args.duration


def _header(text: str) -> tuple[str, str]:
    name, _, value = text.partition(":")
    return name.strip(), value.strip()


def drain(timeout: float) -> None:
    """Wait (at most `timeout`) for the requests in flight to finish."""
    until = time.time() + timeout
    while IN_FLIGHT and time.time() < until:
        gevent.sleep(0.05)
