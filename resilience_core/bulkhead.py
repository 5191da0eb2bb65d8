"""Per-model concurrency limit with a bounded FIFO queue that rejects fast when full."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass

from .context import Context
from .errors import BulkheadFullError, DeadlineExceededError
from .events import BulkheadRejected
from .outcome import Outcome
from .policy import Next


@dataclass(frozen=True, slots=True)
class BulkheadConfig:
    """At most `max_concurrent` calls in flight, `max_queue` more waiting.

    Usage::

        Bulkhead(BulkheadConfig(max_concurrent=32, max_queue=64))
    """

    max_concurrent: int
    max_queue: int = 0

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or self.max_queue < 0:
            raise ValueError("BulkheadConfig needs max_concurrent >= 1 and max_queue >= 0")


class Bulkhead:
    """Admits up to the limit, queues up to the queue size (bounded by the deadline), rejects
    the rest at once. A finished call hands its slot straight to the first waiter, so the count
    never dips and lets a newcomer jump the queue."""

    __slots__ = ("_waiters", "active", "config", "name")

    def __init__(self, config: BulkheadConfig, name: str | None = None) -> None:
        self.config = config
        self.name = name
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def __call__(self, ctx: Context, next: Next) -> Outcome:
        if self.active < self.config.max_concurrent and not self._waiters:
            self.active += 1
        elif len(self._waiters) < self.config.max_queue:
            rejected = await self._wait_for_slot(ctx)
            if rejected is not None:
                return rejected
        else:
            now = ctx.clock.now()
            ctx.events.emit(BulkheadRejected(now, ctx.model, self.active, len(self._waiters)))
            error = BulkheadFullError(f"bulkhead full for {ctx.model}", ctx.model)
            return Outcome(error=error, model=ctx.model)
        try:
            return await next(ctx)
        finally:
            self._release()

    async def _wait_for_slot(self, ctx: Context) -> Outcome | None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        handle = None
        if ctx.deadline != math.inf:
            handle = ctx.clock.call_at(ctx.deadline, waiter.cancel)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed to us as we were cancelled: pass it on
            else:
                self._discard(waiter)
            if handle is not None and ctx.clock.now() >= ctx.deadline:
                error = DeadlineExceededError(f"deadline passed waiting in bulkhead of {ctx.model}")
                return Outcome(error=error, model=ctx.model)
            raise
        finally:
            if handle is not None:
                handle.cancel()
        return None

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1

    def describe(self) -> str:
        return f"Bulkhead({self.config.max_concurrent}, queue={self.config.max_queue})"
