"""The system clock's sleeps on loops with a clock of their own (uvloop: whole milliseconds)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from resilience_core import LoopClock

CLOCK = LoopClock()


async def _earliest_wake() -> float:
    """How far past its end each of many short sleeps woke, the least of them (negative: early)."""
    least = float("inf")
    for i in range(400):
        seconds = 0.0001 + (i % 23) * 0.00009  # fractions of a millisecond, where rounding bites
        start = time.monotonic()
        await CLOCK.sleep(seconds)
        least = min(least, time.monotonic() - start - seconds)
    return least


def test_a_sleep_never_ends_before_its_time_on_asyncios_loop():
    assert asyncio.run(_earliest_wake()) >= 0


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is not installed on Windows")
def test_a_sleep_never_ends_before_its_time_on_uvloop():
    # uvloop's timers count whole milliseconds, so a sleep could end up to ~1 ms early by
    # time.monotonic: a request that slept until a rate-limit hold ended found it still held,
    # and waited again until it gave up with no attempt (rate-limits-everywhere, 3 Dec: 99.4 %).
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(_earliest_wake()) >= 0
