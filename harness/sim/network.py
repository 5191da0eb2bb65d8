"""Toxiproxy in virtual time: one proxy per model, its toxics applied to each exchange's bytes.

Coarser than the real server, and said so in the docs: a request is one connection (no
keep-alive reuse), so a toxic's `toxicity` is drawn per request; the slicer and bandwidth
toxics delay whole writes (an event, a header) rather than cutting them into TCP segments;
`slow_close` is not simulated. `down` refuses new connections and breaks open ones, as
disabling a real proxy does.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.endpoints.model import MAX_SECONDS


class ProxyRefused(ConnectionRefusedError):
    """The proxy is down: the connection is refused."""


@dataclass(frozen=True, slots=True)
class SimToxic:
    type: str
    attributes: dict[str, int]
    stream: str
    toxicity: float

    def attribute(self, name: str, default: int = 0) -> int:
        return int(self.attributes.get(name, default))


class SimProxy:
    """One model's proxy: up or down, its toxics, the bytes clients sent into it."""

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.rng = rng
        self.enabled = True
        self.toxics: dict[str, SimToxic] = {}
        self.received_bytes = 0
        self.links: set[Link] = set()
        self.changed = asyncio.Event()
        """Set (and replaced) whenever a toxic comes or goes: a held exchange looks again."""

    def touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def open(self, request_bytes: int) -> Link:
        if not self.enabled:
            raise ProxyRefused(f"proxy {self.name} is down")
        self.received_bytes += request_bytes
        link = Link(self)
        self.links.add(link)
        return link


class SimNetwork:
    """Every proxy of a simulated stack, with the adapter calls faults make (`Toxics`)."""

    def __init__(self, models: list[str], seed: int) -> None:
        self.proxies = {m: SimProxy(m, random.Random(seed * 7_777 + i)) for i, m in enumerate(models)}

    def add_toxic(
        self,
        proxy: str,
        name: str,
        toxic_type: str,
        attributes: dict[str, Any],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> None:
        target = self.proxies[proxy]
        target.toxics[name] = SimToxic(toxic_type, dict(attributes), stream, toxicity)
        target.touch()

    def remove_toxic(self, proxy: str, name: str) -> None:
        target = self.proxies[proxy]
        target.toxics.pop(name, None)
        target.touch()

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        target = self.proxies[proxy]
        target.enabled = enabled
        if not enabled:
            for link in list(target.links):
                link.break_off()
        target.touch()

    def reset(self) -> None:
        for name in self.proxies:
            self.proxies[name].toxics.clear()
            self.set_enabled(name, True)

    def received_bytes(self) -> dict[str, float]:
        return {name: float(proxy.received_bytes) for name, proxy in self.proxies.items()}


Deliver = Callable[[Any], None]
HANG_UP = object()
"""The server closed the connection (after what it sent before)."""


class Link:
    """One exchange through a proxy: the request's way in, the response's way back, each
    through the toxics of its direction. Bytes back arrive in order, each at its time."""

    def __init__(self, proxy: SimProxy) -> None:
        self.proxy = proxy
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()
        self.applies: dict[str, bool] = {}
        self.armed: set[str] = set()
        self.last_arrival = self.opened
        self.pending: deque[tuple[float, Any]] = deque()
        """What is on its way back, in order, with when it arrives."""
        self.sent_down = 0
        self.closed = False
        self.reader: Deliver | None = None
        """Where bytes back go (the client's response); None until the client listens."""
        self.on_break: Callable[[], None] = lambda: None

    def _active(self, stream: str) -> list[tuple[str, SimToxic]]:
        found = []
        for name, toxic in self.proxy.toxics.items():
            if toxic.stream != stream:
                continue
            hit = self.applies.get(name)
            if hit is None:
                hit = self.applies[name] = toxic.toxicity >= 1 or self.proxy.rng.random() < toxic.toxicity
            if hit:
                found.append((name, toxic))
        return found

    def _arm(self, name: str, toxic: SimToxic) -> None:
        """A toxic that breaks the connection after its timeout: timed from when it first
        applies to this link (a reset_peer or a closing timeout)."""
        if name in self.armed or (not toxic.attribute("timeout") and toxic.type == "timeout"):
            return
        self.armed.add(name)
        self.loop.call_at(self.loop.time() + toxic.attribute("timeout") / 1000, self.break_off)

    def arm_downstream(self) -> None:
        """The request is in: the way back's breaking toxics start counting."""
        for name, toxic in self._active("downstream"):
            if toxic.type in ("reset_peer", "timeout"):
                self._arm(name, toxic)

    async def send_request(self, size: int) -> None:
        """The request's way in: delayed, held or broken by the upstream toxics."""
        while True:
            changed = self.proxy.changed
            toxics = [toxic for _, toxic in self._active("upstream")]
            hold = next((t for t in toxics if t.type == "timeout"), None)
            if hold is None:
                break
            if hold.attribute("timeout"):
                await asyncio.sleep(hold.attribute("timeout") / 1000)
                raise ConnectionResetError("the proxy closed a held connection")
            await changed.wait()  # held until the toxic goes
        delay = 0.0
        for toxic in toxics:
            delay += _delay(toxic, size, self.proxy.rng)
            if toxic.type == "reset_peer":
                await asyncio.sleep(delay + toxic.attribute("timeout") / 1000)
                raise ConnectionResetError("the proxy reset the connection")
            if toxic.type == "limit_data" and size > toxic.attribute("bytes"):
                raise ConnectionResetError("the proxy cut the request at its byte limit")
        if delay:
            await asyncio.sleep(delay)
        if self.closed:
            raise ConnectionResetError("the connection broke")

    def send_back(self, item: Any, size: int) -> None:
        """One write of the response on its way back; raises once the client is gone."""
        if self.closed:
            raise ConnectionResetError("the client closed the connection")
        now = self.loop.time()
        arrival = now
        for name, toxic in self._active("downstream"):
            kind = toxic.type
            if kind == "timeout":
                self._arm(name, toxic)
                return  # dropped
            if kind == "reset_peer":
                self._arm(name, toxic)
                continue
            if kind == "limit_data":
                if self.sent_down + size > toxic.attribute("bytes"):
                    self.sent_down = toxic.attribute("bytes")
                    self._queue(max(arrival, self.last_arrival), HANG_UP)
                    return
                continue
            if kind == "latency":  # from when the write was made, as Toxiproxy times it
                arrival += _delay(toxic, size, self.proxy.rng)
            else:  # bandwidth and slicer: the bytes queue behind those before them
                arrival = max(arrival, self.last_arrival) + _delay(toxic, size, self.proxy.rng)
        self.sent_down += size
        self._queue(max(arrival, self.last_arrival), item)

    def send_back_close(self) -> None:
        """The server hung up: the client sees it after what was already on its way."""
        self._queue(max(self.loop.time(), self.last_arrival), HANG_UP)

    def _queue(self, arrival: float, item: Any) -> None:
        """In order, as TCP delivers: timers due at the same instant may fire in any order, so
        one timer at a time drains the queue."""
        self.last_arrival = arrival
        if not self.pending and arrival <= self.loop.time():
            self._deliver(item)
            return
        self.pending.append((arrival, item))
        if len(self.pending) == 1:
            self.loop.call_at(arrival, self._drain)

    def _drain(self) -> None:
        now = self.loop.time()
        while self.pending and self.pending[0][0] <= now:
            self._deliver(self.pending.popleft()[1])
        if self.pending:
            self.loop.call_at(self.pending[0][0], self._drain)

    def _deliver(self, item: Any) -> None:
        if self.closed:
            self.pending.clear()
        elif item is HANG_UP:
            self.break_off()
        elif self.reader is not None:
            self.reader(item)

    def break_off(self) -> None:
        """The connection broke (a reset, a proxy disabled, a limit reached)."""
        if not self.closed:
            self.closed = True
            self.proxy.links.discard(self)
            self.on_break()

    def close(self) -> None:
        """The client let go: further writes back fail."""
        self.closed = True
        self.proxy.links.discard(self)


def _delay(toxic: SimToxic, size: int, rng: random.Random) -> float:
    """Seconds a write of `size` bytes is delayed by one toxic."""
    kind = toxic.type
    if kind == "latency":
        jitter = toxic.attribute("jitter")
        return max(0.0, toxic.attribute("latency") + (rng.uniform(-jitter, jitter) if jitter else 0.0)) / 1000
    if kind == "bandwidth":
        rate = toxic.attribute("rate")
        return size / (rate * 1000) if rate > 0 else MAX_SECONDS
    if kind == "slicer":
        pieces = max(1, math.ceil(size / max(1, toxic.attribute("average_size", 1))))
        return (pieces - 1) * toxic.attribute("delay") / 1_000_000
    return 0.0
