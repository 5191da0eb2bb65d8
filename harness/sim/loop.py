"""An asyncio event loop on a virtual clock: when nothing is ready to run it jumps straight to
its next timer. Code that reads time only through its loop (`asyncio.sleep`, `asyncio.timeout`,
`loop.call_at`, and the core through `LoopTimeClock`) runs unchanged and as fast as the CPU
allows; with no real I/O in it, the same program gives the same result every time.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

START = 1000.0
"""Where virtual time starts: far from 0, so no "never happened" default of 0.0 looks recent."""


class SimulationStalled(RuntimeError):
    """Nothing is ready and no timer is set: the simulated program waits for something that
    cannot happen (a real socket, a future nobody resolves)."""


class _JumpingSelector(selectors.DefaultSelector):
    """Polls the loop's own wake-up pipe without waiting, and turns a wait into a jump."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise SimulationStalled("the simulation waits with nothing scheduled (a deadlock)")
        assert self.loop is not None
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """`time()` is virtual; waiting for the next timer takes no wall time."""

    def __init__(self, start: float = START) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = start

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


class LoopTimeClock:
    """The core's `Clock` on the running loop's own time (`LoopClock` reads the system's
    monotonic clock directly, which the virtual loop does not move)."""

    __slots__ = ("__weakref__", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        return self.loop.call_at(when, callback)


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]], start: float = START) -> T:
    """Run `main()` to completion on a fresh virtual-time loop, cancel what it left running,
    and close the loop."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
