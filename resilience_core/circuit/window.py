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
    """Calls of the last `seconds`, in `buckets` equal slices that expire as time moves on."""

    __slots__ = ("_buckets", "_epochs", "_latest", "_totals", "buckets", "seconds", "width")

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        if seconds <= 0 or buckets < 1:
            raise ValueError("TimeWindow needs seconds > 0 and buckets >= 1")
        self.seconds = seconds
        self.buckets = buckets
        self.width = seconds / buckets
        self.reset()

    def reset(self) -> None:
        self._buckets = [[0, 0, 0] for _ in range(self.buckets)]
        self._epochs = [-1] * self.buckets
        self._totals = [0, 0, 0]
        self._latest = -1

    def _advance(self, now: float) -> int:
        epoch = math.floor(now / self.width)
        if epoch == self._latest:
            return epoch  # still in the newest bucket: nothing can have expired
        self._latest = epoch
        oldest_alive = epoch - self.buckets + 1
        for i, seen in enumerate(self._epochs):
            if seen != -1 and seen < oldest_alive:
                bucket = self._buckets[i]
                for k in range(3):
                    self._totals[k] -= bucket[k]
                    bucket[k] = 0
                self._epochs[i] = -1
        return epoch

    def record(self, failed: bool, slow: bool, now: float) -> None:
        epoch = self._advance(now)
        i = epoch % self.buckets
        self._epochs[i] = epoch
        bucket = self._buckets[i]
        bucket[0] += 1
        bucket[1] += failed
        bucket[2] += slow
        self._totals[0] += 1
        self._totals[1] += failed
        self._totals[2] += slow

    def snapshot(self, now: float) -> Snapshot:
        self._advance(now)
        return Snapshot(*self._totals)
