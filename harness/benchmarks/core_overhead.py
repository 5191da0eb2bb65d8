"""Per-call overhead of the resilience core on the success path, against common alternatives.

Interleaved rounds in one process (every case runs once per round, in turn), so machine noise
hits all cases alike; the median ns per call over rounds is reported, and ratios against
aiobreaker + tenacity. Run with `make bench` or `python -m harness.benchmarks.core_overhead`.

Each case is also timed cold, one call at a time after more memory than the L1 and L2 caches
hold was touched. A warm loop keeps the core's code and objects in cache, which a gateway never
does: in process its policies cost 2.9 µs a request warm and 11-14 µs cold, and 20-40 µs in the
running gateway, depending on the day (docs/benchmarks/gateway.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path

from harness.benchmarks.readme import bench_command, publish
from resilience_core import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    Deadline,
    MetricsCollector,
    ModelRouter,
    ModelSpec,
    Pipeline,
    Retry,
    RouterConfig,
)

Call = Callable[[], Awaitable[object]]
"""One call of a case, through what it measures."""

REFERENCE = "aiobreaker + tenacity (+asyncio.timeout)"
SYNC = "pybreaker + tenacity (sync)"

EVICT_BYTES = 8 << 20
"""Touched before each cold call: more than this machine's L2 (2 MiB a core), as a gateway's own
work between two requests is."""
_EVICTED = bytearray(EVICT_BYTES)
COLD_CALLS = 400
"""Cold calls per case and round: each costs an eviction (~0.2 ms), so fewer than warm ones."""


async def _answer(request: object = None) -> str:
    return "ok"


def _sync_answer() -> str:
    return "ok"


def _calls() -> tuple[dict[str, Call], Callable[[], object]]:
    """One call of each async case, and of the sync pair (no event loop: warm only)."""
    import aiobreaker
    import pybreaker
    import tenacity

    pipeline = Pipeline(
        Deadline(30.0),
        Retry(),
        CircuitBreakerPolicy(CircuitBreaker("m")),
        MetricsCollector().policy("m"),
    )
    router = ModelRouter(
        [ModelSpec("a", _answer), ModelSpec("b", _answer, priority=1)], RouterConfig(deadline=30.0)
    )
    abreaker = aiobreaker.CircuitBreaker(fail_max=5)
    pbreaker = pybreaker.CircuitBreaker(fail_max=5)
    retrying_async = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(0.1, max=2),
        reraise=True,
    )
    retrying_sync = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(0.1, max=2),
        reraise=True,
    )

    async def aiobreaker_tenacity() -> object:
        async with asyncio.timeout(30.0):
            return await retrying_async(abreaker.call_async, _answer)

    calls: dict[str, Call] = {
        "bare await f()": _answer,
        "ours: Pipeline(deadline+retry+breaker+metrics)": lambda: pipeline.execute(_answer, None),
        "ours: ModelRouter.call (2 models)": lambda: router.call(None),
        REFERENCE: aiobreaker_tenacity,
    }
    return calls, lambda: retrying_sync(pbreaker.call, _sync_answer)


async def warm(call: Call, n: int) -> float:
    """ns per call over `n` calls in a row: the case's code and objects stay in cache."""
    start = time.perf_counter_ns()
    for _ in range(n):
        await call()
    return (time.perf_counter_ns() - start) / n


def warm_sync(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / n


def evict() -> None:
    """Push the caches' contents out: one byte written in each 64-byte line of `EVICT_BYTES`."""
    _EVICTED[::64] = bytes(EVICT_BYTES // 64)


async def cold(call: Call, n: int) -> float:
    """ns per call, each call timed alone right after an eviction."""
    spent = 0
    for _ in range(n):
        evict()
        start = time.perf_counter_ns()
        await call()
        spent += time.perf_counter_ns() - start
    return spent / n


async def measure(rounds: int, calls: int, cold_calls: int = COLD_CALLS) -> dict[str, dict[str, float]]:
    """Median ns per call of every case, warm and cold, over interleaved rounds."""
    cases, sync_case = _calls()
    warm_samples: dict[str, list[float]] = {name: [] for name in [*cases, SYNC]}
    cold_samples: dict[str, list[float]] = {name: [] for name in cases}
    for call in cases.values():  # warm-up
        await warm(call, calls // 10 or 1)
    warm_sync(sync_case, calls // 10 or 1)
    for _ in range(rounds):
        for name, call in cases.items():
            gc.collect()
            warm_samples[name].append(await warm(call, calls))
            gc.collect()
            cold_samples[name].append(await cold(call, cold_calls))
        gc.collect()
        warm_samples[SYNC].append(warm_sync(sync_case, calls))
    return {
        "warm": {name: statistics.median(values) for name, values in warm_samples.items()},
        "cold": {name: statistics.median(values) for name, values in cold_samples.items()},
    }


def memory_per_model(models: int = 500, calls_each: int = 200) -> dict[str, float]:
    """Bytes per model in a router: freshly built, and after each model's windows fill up."""

    async def run() -> dict[str, float]:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        specs = [ModelSpec(f"m{i}", _answer) for i in range(models)]
        router = ModelRouter(specs, RouterConfig(deadline=30.0))
        built = tracemalloc.get_traced_memory()[0]
        for handle in router.models.values():
            for _ in range(calls_each):
                await handle.pipeline.execute(_answer, None, model=handle.name)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del router
        return {"built": (built - base) / models, "warm": (used - base) / models}

    return asyncio.run(run())


def _versions() -> dict[str, str]:
    names = ["aiobreaker", "tenacity", "pybreaker", "model-chaos-harness"]
    return {"python": platform.python_version(), **{n: version(n) for n in names}}


def render(results: dict[str, dict[str, float]], memory: dict[str, float], args: argparse.Namespace) -> str:
    warm_ns, cold_ns = results["warm"], results["cold"]
    reference, cold_reference = warm_ns[REFERENCE], cold_ns[REFERENCE]
    lines = [
        "## Core overhead per call (success path)",
        "",
        f"Command: `{args.command}`; {args.rounds} interleaved rounds x {args.calls} calls, median.",
        f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
        f"{_cpu_count()} cores (shared and noisy: compare ratios, not absolutes).",
        "",
        "| case | ns per call | x aiobreaker + tenacity | cold: ns per call "
        "| cold: x aiobreaker + tenacity |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, ns in warm_ns.items():
        cold = cold_ns.get(name)
        cold_cells = f"{cold:,.0f} | {cold / cold_reference:.3f}" if cold is not None else "- | -"
        lines.append(f"| {name} | {ns:,.0f} | {ns / reference:.3f} | {cold_cells} |")
    lines += [
        "",
        f"Cold: in the same rounds, {COLD_CALLS} calls of each case, each timed alone right after "
        f"{EVICT_BYTES >> 20} MiB were touched (one byte a cache line), median (the sync pair: warm "
        "only). Between two requests a gateway runs its server, its client and the kernel, so the "
        "core meets each request cold: the cold column is the nearer figure for what it adds to one.",
        "",
        f"Memory per model in a 500-model ModelRouter: {memory['built'] / 1024:.1f} KiB when "
        f"built, {memory['warm'] / 1024:.1f} KiB after 200 calls each (windows full).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        "",
    ]
    return "\n".join(lines)


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/core.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    args.command = bench_command("harness.benchmarks.core_overhead", argv)
    results = asyncio.run(measure(args.rounds, args.calls))
    memory = memory_per_model()
    text = render(results, memory, args)
    data = {
        "ns_per_call": results["warm"],
        "cold_ns_per_call": results["cold"],
        "evict_bytes": EVICT_BYTES,
        "bytes_per_model": memory,
        "versions": _versions(),
    }
    publish(text, data, args.out, args.readme, "core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
