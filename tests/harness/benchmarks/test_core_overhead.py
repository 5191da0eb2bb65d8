"""The core bench measures every case warm and the async ones cold, and says which is which."""

from __future__ import annotations

import argparse
import asyncio

from harness.benchmarks import core_overhead
from harness.benchmarks.core_overhead import REFERENCE, SYNC, measure, render


def test_every_case_is_measured_warm_and_every_async_case_cold():
    results = asyncio.run(measure(rounds=1, calls=20, cold_calls=3))
    assert set(results["warm"]) == {*results["cold"], SYNC}
    assert REFERENCE in results["cold"] and SYNC not in results["cold"]
    assert all(ns > 0 for figures in results.values() for ns in figures.values())


def test_a_cold_call_comes_after_an_eviction(monkeypatch):
    evictions: list[int] = []
    monkeypatch.setattr(core_overhead, "evict", lambda: evictions.append(1))
    calls: list[int] = []

    async def call() -> object:
        calls.append(len(evictions))
        return None

    asyncio.run(core_overhead.cold(call, 4))
    assert calls == [1, 2, 3, 4]


def test_the_table_shows_the_sync_pair_warm_only():
    results = {
        "warm": {"bare await f()": 80.0, REFERENCE: 20_000.0, SYNC: 9_000.0},
        "cold": {"bare await f()": 1_000.0, REFERENCE: 60_000.0},
    }
    args = argparse.Namespace(command="make bench", rounds=1, calls=20)
    text = render(results, {"built": 1024.0, "warm": 2048.0}, args)
    assert f"| {SYNC} | 9,000 | 0.450 | - | - |" in text
    assert f"| {REFERENCE} | 20,000 | 1.000 | 60,000 | 1.000 |" in text
    assert "| bare await f() | 80 | 0.004 | 1,000 | 0.017 |" in text
