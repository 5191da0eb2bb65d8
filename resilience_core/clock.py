"""Time as an injected dependency, so policies can be tested without real sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    """Something that can be cancelled before it fires."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The only source of time the core reads: a monotonic `now`, `sleep` and a timer.

    `call_at` exists so deadlines can cancel a running attempt on whatever clock is injected:
    the real event loop in production, `resilience_core.testing.FakeClock` in tests.
    """

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle: ...


class LoopClock:
    """The system's monotonic clock, with sleeps and timers on the running loop; the default.

    `now` reads `time.monotonic` directly (a third of the cost of `loop.time()`, and it is what
    asyncio's own loop uses); `call_at` translates to the loop's clock, so loops with a clock
    of their own (uvloop) still fire on time.

    Usage::

        clock = LoopClock()
        start = clock.now()
        await clock.sleep(0.1)
    """

    __slots__ = ()

    now = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        await asyncio.sleep(max(0.0, seconds))
        # A loop with a clock of its own (uvloop counts whole milliseconds) may wake up to a
        # millisecond before `now` passes the end: sleep out the rest, or a request that slept
        # until a rate-limit hold ended finds it still held and counts another wait.
        while (left := end - time.monotonic()) > 0:  # noqa: ASYNC110 (a top-up, not a poll)
            await asyncio.sleep(left)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_at(loop.time() + (when - time.monotonic()), callback)


SYSTEM_CLOCK = LoopClock()
