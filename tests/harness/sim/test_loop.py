"""The virtual-time loop: waiting costs no wall time, and a deadlock says so."""

import asyncio
import time

import pytest

from harness.sim.loop import START, LoopTimeClock, SimulationStalled, run_virtual
from resilience_core import Pipeline, Timeout


def test_an_hour_of_sleeps_and_timeouts_passes_in_no_wall_time():
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(asyncio.sleep(i) for i in range(3600)))
        timed_out = False
        try:
            async with asyncio.timeout(5):
                await asyncio.sleep(60)
        except TimeoutError:
            timed_out = True
        return loop.time() - START, timed_out

    wall = time.perf_counter()
    elapsed, timed_out = run_virtual(main)
    assert elapsed == pytest.approx(3604.0) and timed_out
    assert time.perf_counter() - wall < 5


def test_the_cores_deadlines_run_on_the_loops_virtual_clock():
    async def main() -> tuple[object, float]:
        loop = asyncio.get_running_loop()
        clock = LoopTimeClock(loop)

        async def slow(request: object) -> str:
            await asyncio.sleep(30)
            return "late"

        outcome = await Pipeline(Timeout(2.0)).execute(slow, None, clock=clock)
        return outcome.error, loop.time() - START

    error, elapsed = run_virtual(main)
    assert error is not None and elapsed == pytest.approx(2.0)


def test_waiting_for_what_can_never_happen_is_a_clear_error_not_a_hang():
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationStalled):
        run_virtual(main)
