"""Deadlines without a timer per call: one watchdog per clock (and loop) holds them all.

Arming an event-loop timer per attempt costs more than the rest of a policy stack. The
watchdog keeps deadlines in a dict (an insert and a delete per attempt) and one timer at the
earliest deadline it knows; calls that finish in time never touch the timer. An entry is the
attempt's context, which names the task to cancel (`Context.task`): a callback per attempt
(`partial(task.cancel)`) cost two allocations and a method lookup on the task: ~30 cache lines
fetched cold per request (callgrind's cache simulation, in process). The engine adds and removes
entries itself (`entries[ctx] = when`, `entries.pop(ctx, None)`), in its own frame.
"""

from __future__ import annotations

import asyncio
import math
from weakref import WeakKeyDictionary

from .clock import Clock, LoopClock, TimerHandle
from .context import Context

_EPSILON = 1e-6
"""The loop may fire a timer a hair before its time; treat that as due."""


class Watchdog:
    """Cancels the task of each registered context once its time has come, unless removed first."""

    __slots__ = ("_handle", "armed_at", "clock", "entries")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entries: dict[Context, float] = {}
        self._handle: TimerHandle | None = None
        self.armed_at = math.inf

    def arm(self, when: float) -> None:
        """Make the timer fire at `when` (earlier than it is armed for now)."""
        if self._handle is not None:
            self._handle.cancel()
        self.armed_at = when
        self._handle = self.clock.call_at(when, self._fire)

    def _fire(self) -> None:
        now = self.clock.now() + _EPSILON
        self._handle = None
        self.armed_at = math.inf
        due = []
        earliest = math.inf
        for ctx, when in self.entries.items():
            if when <= now:
                due.append(ctx)
            elif when < earliest:
                earliest = when
        for ctx in due:
            del self.entries[ctx]
        if earliest < math.inf:
            self.armed_at = earliest
            self._handle = self.clock.call_at(earliest, self._fire)
        for ctx in due:
            if ctx.task is not None:
                ctx.task.cancel()


_per_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = WeakKeyDictionary()
_per_clock: WeakKeyDictionary[object, Watchdog] = WeakKeyDictionary()
_kept: dict[int, tuple[object, Watchdog]] = {}


def watchdog_for(clock: Clock, loop: asyncio.AbstractEventLoop) -> Watchdog:
    """The watchdog of `clock`; for the loop clock, that of `loop` (timers belong to a loop)."""
    if type(clock) is LoopClock:
        dog = _per_loop.get(loop)
        if dog is None:
            dog = _per_loop[loop] = Watchdog(clock)
        return dog
    try:
        dog = _per_clock.get(clock)
        if dog is None:
            dog = _per_clock[clock] = Watchdog(clock)
    except TypeError:  # a clock with __slots__ and no __weakref__: kept for good (clocks are few)
        found = _kept.get(id(clock))
        if found is None or found[0] is not clock:
            found = _kept[id(clock)] = (clock, Watchdog(clock))
        dog = found[1]
    return dog
