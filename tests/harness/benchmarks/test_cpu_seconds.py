"""The gateway bench's CPU reading counts every thread of the process, ended ones too, to well
under a tick."""

import os
import resource
import threading
import time

import pytest

from harness.benchmarks.gateway_overhead import CPU_CLOCKS, cpu_seconds


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _rusage() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.skipif(not CPU_CLOCKS, reason="no process CPU clocks here: /proc's ticks are read")
def test_cpu_seconds_counts_a_thread_that_already_ended_and_agrees_with_getrusage():
    before, before_rusage = cpu_seconds(os.getpid()), _rusage()
    worker = threading.Thread(target=_burn, args=(0.15,))
    worker.start()
    worker_running = worker.is_alive()
    _burn(0.05)
    worker.join()
    used, used_rusage = cpu_seconds(os.getpid()) - before, _rusage() - before_rusage
    assert worker_running
    assert used >= 0.19  # both threads' 0.2 s, not the main thread's 0.05 s alone
    assert abs(used - used_rusage) < 0.02  # the kernel's own process total, within 2 ms x 10
