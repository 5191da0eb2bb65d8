"""Per-call overhead of the resilience core on the success path, against common alternatives.

Interleaved rounds in one process (every case runs once per round, in turn), so machine noise
hits all cases alike; the median ns per call over rounds is reported, and ratios against
aiobreaker + tenacity. Run with `make bench` or `python -m harness.benchmarks.core_overhead`.
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

Case = Callable[[int], Awaitable[float]]


async def _answer(request: object = None) -> str:
    return "ok"


def _sync_answer() -> str:
    return "ok"


def _cases() -> dict[str, Case]:
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

    async def bare(n: int) -> float:
        start = time.perf_counter_ns()
        for _ in range(n):
            await _answer()
        return (time.perf_counter_ns() - start) / n

    async def ours_pipeline(n: int) -> float:
        start = time.perf_counter_ns()
        for _ in range(n):
            await pipeline.execute(_answer, None)
        return (time.perf_counter_ns() - start) / n

    async def ours_router(n: int) -> float:
        start = time.perf_counter_ns()
        for _ in range(n):
            await router.call(None)
        return (time.perf_counter_ns() - start) / n

    async def aiobreaker_tenacity(n: int) -> float:
        start = time.perf_counter_ns()
        for _ in range(n):
            async with asyncio.timeout(30.0):
                await retrying_async(abreaker.call_async, _answer)
        return (time.perf_counter_ns() - start) / n

    async def pybreaker_tenacity_sync(n: int) -> float:
        start = time.perf_counter_ns()
        for _ in range(n):
            retrying_sync(pbreaker.call, _sync_answer)
        return (time.perf_counter_ns() - start) / n

    return {
        "bare await f()": bare,
        "ours: Pipeline(deadline+retry+breaker+metrics)": ours_pipeline,
        "ours: ModelRouter.call (2 models)": ours_router,
        "aiobreaker + tenacity (+asyncio.timeout)": aiobreaker_tenacity,
        "pybreaker + tenacity (sync)": pybreaker_tenacity_sync,
    }


async def measure(rounds: int, calls: int) -> dict[str, float]:
    cases = _cases()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for case in cases.values():  # warm-up
        await case(calls // 10 or 1)
    for _ in range(rounds):
        for name, case in cases.items():
            gc.collect()
            samples[name].append(await case(calls))
    return {name: statistics.median(values) for name, values in samples.items()}


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


def render(results: dict[str, float], memory: dict[str, float], args: argparse.Namespace) -> str:
    reference = results["aiobreaker + tenacity (+asyncio.timeout)"]
    lines = [
        "## Core overhead per call (success path)",
        "",
        f"Command: `{args.command}`; {args.rounds} interleaved rounds x {args.calls} calls, median.",
        f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
        f"{_cpu_count()} cores (shared and noisy: compare ratios, not absolutes).",
        "",
        "| case | ns per call | x aiobreaker + tenacity |",
        "| --- | ---: | ---: |",
    ]
    for name, ns in results.items():
        lines.append(f"| {name} | {ns:,.0f} | {ns / reference:.3f} |")
    lines += [
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
    data = {"ns_per_call": results, "bytes_per_model": memory, "versions": _versions()}
    publish(text, data, args.out, args.readme, "core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
