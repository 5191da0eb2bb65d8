"""Sliding windows over call results: count-based and time-based, O(1) per record."""

from __future__ import annotations

import math
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

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(self._calls, self._failures, self._slow)


class TimeWindow:
    """Calls of the last `seconds`, in `buckets` equal slices that expire as time moves on.

    Per-bucket counts live in three parallel lists with scalar totals, and a fast success
    touches only the call counts: `record` runs on every request.
    """

    __slots__ = (
        "_calls",
        "_epochs",
        "_failures",
        "_latest",
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
        self._epochs = [-1] * self.buckets
        self._total_calls = self._total_failures = self._total_slow = 0
        self._latest = -1

    def _advance(self, epoch: int) -> None:
        """Move the newest bucket to `epoch`, dropping the buckets that fell out of the span."""
        self._latest = epoch
        oldest_alive = epoch - self.buckets + 1
        for i, seen in enumerate(self._epochs):
            if seen != -1 and seen < oldest_alive:
                self._total_calls -= self._calls[i]
                self._total_failures -= self._failures[i]
                self._total_slow -= self._slow[i]
                self._calls[i] = self._failures[i] = self._slow[i] = 0
                self._epochs[i] = -1

    def record(self, failed: bool, slow: bool, now: float) -> None:
        epoch = math.floor(now / self.width)
        if epoch != self._latest:
            self._advance(epoch)
        i = epoch % self.buckets
        self._epochs[i] = epoch
        self._calls[i] += 1
        self._total_calls += 1
        if failed:
            self._failures[i] += 1
            self._total_failures += 1
        if slow:
            self._slow[i] += 1
            self._total_slow += 1

    def snapshot(self, now: float) -> Snapshot:
        epoch = math.floor(now / self.width)
        if epoch != self._latest:
            self._advance(epoch)
        return Snapshot(self._total_calls, self._total_failures, self._total_slow)
