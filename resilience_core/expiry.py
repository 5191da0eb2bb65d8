"""Deadlines without a timer per call: one watchdog per clock (and loop) holds them all.

Arming an event-loop timer per attempt costs ~4 µs here, most of a policy stack's budget.
The watchdog keeps deadlines in a dict (an insert and a delete per attempt) and one timer at
the earliest deadline it knows; calls that finish in time never touch the timer.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from .clock import Clock, LoopClock, TimerHandle

_EPSILON = 1e-6
"""The loop may fire a timer a hair before its time; treat that as due."""


class Watchdog:
    """Fires each registered callback once its time has come, unless removed first.

    Registering is a dict write and, when the time is earlier than `armed_at`, `arm`;
    removing is `entries.pop(callback, None)`, whose answer says whether it was still pending.
    Plain data rather than methods: the attempt does both on every call, inline.
    """

    __slots__ = ("_handle", "armed_at", "clock", "entries")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entries: dict[Callable[[], object], float] = {}
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
        for callback, when in self.entries.items():
            if when <= now:
                due.append(callback)
            elif when < earliest:
                earliest = when
        for callback in due:
            del self.entries[callback]
        if earliest < math.inf:
            self.armed_at = earliest
            self._handle = self.clock.call_at(earliest, self._fire)
        for callback in due:
            callback()


_per_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = WeakKeyDictionary()
_per_clock: WeakKeyDictionary[object, Watchdog] = WeakKeyDictionary()


_tasks_by_loop = getattr(asyncio.tasks, "_current_tasks", None)
current_task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = (
    _tasks_by_loop.get if isinstance(_tasks_by_loop, dict) else asyncio.current_task
)
"""The task running on `loop`, in one C call: `asyncio.current_task()` is Python code on 3.11
(two calls deep) and shows on the per-attempt path; 3.12 made it C, used from there on."""


def watchdog_for(clock: Clock, loop: asyncio.AbstractEventLoop) -> Watchdog:
    """The watchdog of `clock`; for the loop clock, that of `loop` (the running one, which
    the caller already holds). Looked up once per loop and clock by each attempt, which keeps
    the answer (see `attempt_with`)."""
    if type(clock) is LoopClock:
        dog = _per_loop.get(loop)
        if dog is None:
            dog = _per_loop[loop] = Watchdog(clock)
        return dog
    dog = _per_clock.get(clock)
    if dog is None:
        dog = _per_clock[clock] = Watchdog(clock)
    return dog
