"""Sliding windows over call results: count-based and time-based, O(1) per record."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Totals over the window at one moment."""

    calls: int
    failures: int
    slow: int

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    @property
    def slow_rate(self) -> float:
        return self.slow / self.calls if self.calls else 0.0


class Window(Protocol):
    """Records results and reports totals over its span."""

    def record(self, failed: bool, slow: bool, now: float) -> None: ...

    def passed(self, ends: list[float]) -> None:
        """Fast successes that ended at `ends`, oldest first: `record(False, False, end)` each."""
        ...

    def snapshot(self, now: float) -> Snapshot: ...

    def reset(self) -> None: ...


class CountWindow:
    """The last `size` calls, as a ring with running totals."""

    __slots__ = ("_calls", "_failures", "_index", "_ring", "_slow", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("CountWindow size must be >= 1")
        self.size = size
        self.reset()

    def reset(self) -> None:
        self._ring: list[int] = [0] * self.size  # bit 0 = recorded, bit 1 = failed, bit 2 = slow
        self._index = 0
        self._calls = self._failures = self._slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        old = self._ring[self._index]
        if old:
            self._calls -= 1
            self._failures -= (old >> 1) & 1
            self._slow -= (old >> 2) & 1
        self._ring[self._index] = 1 | (failed << 1) | (slow << 2)
        self._index = (self._index + 1) % self.size
        self._calls += 1
        self._failures += failed
        self._slow += slow

    def passed(self, ends: list[float]) -> None:
        for _ in ends:
            self.record(False, False, 0.0)

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(self._calls, self._failures, self._slow)


class TimeWindow:
    """Calls of the last `seconds`, in `buckets` equal slices that expire as time moves on.

    `record` runs on every request, so the slice now open is three counters and its end
    time: a call inside it costs a comparison and an increment. It joins the per-slice lists
    (three, parallel, with running totals) only once time has moved past it. The clock must
    not go backwards (a call stamped before the open slice counts in it).
    """

    __slots__ = (
        "_calls",
        "_ends",
        "_epoch",
        "_epochs",
        "_failures",
        "_open_calls",
        "_open_failures",
        "_open_slow",
        "_slow",
        "_total_calls",
        "_total_failures",
        "_total_slow",
        "buckets",
        "seconds",
        "width",
    )

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        if seconds <= 0 or buckets < 1:
            raise ValueError("TimeWindow needs seconds > 0 and buckets >= 1")
        self.seconds = seconds
        self.buckets = buckets
        self.width = seconds / buckets
        self.reset()

    def reset(self) -> None:
        self._calls = [0] * self.buckets
        self._failures = [0] * self.buckets
        self._slow = [0] * self.buckets
        self._epochs: list[int | None] = [None] * self.buckets
        self._total_calls = self._total_failures = self._total_slow = 0
        self._epoch: int | None = None
        """The open slice's number (time // width); None before the first call."""
        self._ends = -math.inf
        self._open_calls = self._open_failures = self._open_slow = 0

    def _move(self, now: float) -> None:
        """Close the open slice, drop the slices that fell out of the span, open `now`'s."""
        epoch = math.floor(now / self.width)
        if epoch == self._epoch:
            return  # rounding at the slice's edge: still the same slice
        closing = self._epoch
        if closing is not None and self._open_calls:
            i = closing % self.buckets
            self._epochs[i] = closing
            self._calls[i] = self._open_calls
            self._failures[i] = self._open_failures
            self._slow[i] = self._open_slow
            self._total_calls += self._open_calls
            self._total_failures += self._open_failures
            self._total_slow += self._open_slow
        oldest_alive = epoch - self.buckets + 1
        for i, seen in enumerate(self._epochs):
            if seen is not None and seen < oldest_alive:
                self._total_calls -= self._calls[i]
                self._total_failures -= self._failures[i]
                self._total_slow -= self._slow[i]
                self._calls[i] = self._failures[i] = self._slow[i] = 0
                self._epochs[i] = None
        self._epoch = epoch
        self._ends = (epoch + 1) * self.width
        self._open_calls = self._open_failures = self._open_slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        if now >= self._ends:
            self._move(now)
        self._open_calls += 1
        if failed:
            self._open_failures += 1
        if slow:
            self._open_slow += 1

    def passed(self, ends: list[float]) -> None:
        """The ends come from one clock, in order: a run of them inside the open slice is
        counted at once (found by bisection) rather than one comparison each."""
        i, count = 0, len(ends)
        while i < count:
            if ends[i] >= self._ends:
                self._move(ends[i])
            j = bisect_left(ends, self._ends, i + 1)  # ends[i] counts here whatever `_move` did
            self._open_calls += j - i
            i = j

    def snapshot(self, now: float) -> Snapshot:
        if now >= self._ends:
            self._move(now)
        return Snapshot(
            self._total_calls + self._open_calls,
            self._total_failures + self._open_failures,
            self._total_slow + self._open_slow,
        )
