"""A small asyncio load generator for benchmarks (Locust's own CPU would blur the figures).

Open loop at `--rate` (or closed loop with `--concurrency` and no rate): prints one JSON line
with the count, errors, achieved rate and latency percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

BODY = {"model": "chat", "messages": [{"role": "user", "content": "benchmark"}]}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _one(session: aiohttp.ClientSession, url: str, latencies: list[float], errors: list[int]) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, json=BODY) as response:
            await response.read()
            if response.status != 200:
                errors.append(response.status)
                return
    except aiohttp.ClientError:
        errors.append(0)
        return
    latencies.append((time.perf_counter() - started) * 1000)


async def run(url: str, rate: float, duration: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=max(concurrency, 1))
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        end = started + duration
        if rate > 0:
            tasks = []
            sent = 0
            while time.perf_counter() < end:
                due = started + sent / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(_one(session, url, latencies, errors)))
                sent += 1
            await asyncio.gather(*tasks)
        else:

            async def loop() -> None:
                while time.perf_counter() < end:
                    await _one(session, url, latencies, errors)

            await asyncio.gather(*(loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "rate": (len(latencies) + len(errors)) / elapsed,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.rate, args.duration, args.concurrency))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
