"""Test helpers: a fake clock that jumps instead of sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

_SETTLE_ROUNDS = 10_000


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A `Clock` whose time moves only when told to, so tests never sleep for real.

    `run(coro)` drives a coroutine to completion, letting every task settle and then jumping
    to the next timer, so code that sleeps or times out finishes at once in virtual time.

    Usage::

        clock = FakeClock()
        outcome = await clock.run(pipeline.execute(call, request, clock=clock))
        assert clock.now() == pytest.approx(2.0)
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> _Timer:
        timer = _Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        timer = self.call_at(self._now + seconds, lambda: _wake(future))
        try:
            await future
        finally:
            timer.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, firing every timer that falls due on the way."""
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        while self._timers and self._timers[0][0] <= when:
            due, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, due)
            timer.callback()
        self._now = max(self._now, when)

    def next_timer(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def settle(self) -> None:
        """Yield until no other task is ready to run."""
        loop = asyncio.get_running_loop()
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)
            if not getattr(loop, "_ready", None):
                return

    async def run(self, awaitable: Awaitable[T], *, limit: float = 1e9) -> T:
        """Drive `awaitable`, jumping time to each next timer whenever everything is idle."""
        task = asyncio.ensure_future(awaitable)
        while not task.done():
            await self.settle()
            if task.done():
                break
            due = self.next_timer()
            if due is None:
                task.cancel()
                raise RuntimeError("deadlock: the task waits but no timer is scheduled")
            if due > limit:
                task.cancel()
                raise RuntimeError(f"virtual time limit {limit} reached")
            self.advance_to(due)
        return task.result()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def never_answers(request: object) -> object:
    """An upstream that accepts the call and stays silent forever."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")
