"""What the gateway's active health checks cost at 500 idle models: two gateways on one stack,
one with the default health policy and one with none, their CPU compared over the same
minute once every model has had its first probe (the first ones are spread over an interval
and open a connection each). Beside it, the same number of one-token requests from a bare
aiohttp session in batches: what the probes would cost through the gateway's HTTP client."""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path
from typing import Any

import aiohttp

from harness.gateway.config import HealthPolicy
from harness.gateway.health import PROBE
from harness.gateway.launch import gateway_config
from harness.run import GatewayProcess
from harness.stack import Stack, start_stack
from harness.stack.processes import tree_cpu_seconds


def probe_cost(folder: Path, models: int = 500, seconds: float = 60.0) -> dict[str, Any]:
    """The probes' CPU as a share of one core: the gateway with checks minus the one without."""
    policy = HealthPolicy()
    settle = policy.interval * (1 + policy.jitter) + 2.0
    stack = start_stack(models, folder / f"probes{models}")
    gateways: dict[str, GatewayProcess] = {}
    try:
        checked = gateway_config(stack, "resilient")
        unchecked = gateway_config(stack, "resilient", policies={"health": None})
        gateways["checked"] = GatewayProcess.start(checked, folder, f"probes-checked-{models}")
        gateways["unchecked"] = GatewayProcess.start(unchecked, folder, f"probes-unchecked-{models}")
        time.sleep(settle)
        before = {name: _cpu(g) for name, g in gateways.items()}
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        used = {name: (_cpu(g) - before[name]) / elapsed for name, g in gateways.items()}
        floor = asyncio.run(_bare_client(stack, models / policy.interval, seconds / 2))
    finally:
        for gateway in gateways.values():
            gateway.stop()
        stack.stop()
    return {
        "models": models,
        "interval": policy.interval,
        "seconds": seconds,
        "probes_per_second": models / policy.interval,
        "checked_cpu_share": used["checked"],
        "unchecked_cpu_share": used["unchecked"],
        "probe_cpu_share": used["checked"] - used["unchecked"],
        "bare_client_cpu_share": floor,
    }


async def _bare_client(stack: Stack, rate: float, seconds: float) -> float:
    """CPU share of a plain aiohttp session sending `rate` probes a second, once a second."""
    urls = [f"{stack.proxy_urls[m]}/v1/chat/completions" for m in stack.models]
    body = {**PROBE, "model": stack.models[0]}
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=seconds + 30)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def probe(url: str) -> None:
            async with session.post(url, json=body) as response:
                await response.read()

        for start in range(0, len(urls), 50):  # every connection opened first, as in the gateway
            await asyncio.gather(*(probe(url) for url in urls[start : start + 50]))
        per_batch, sent = round(rate), 0
        before, started = _own_cpu(), time.monotonic()
        for second in range(int(seconds)):
            await asyncio.gather(*(probe(urls[(sent + i) % len(urls)]) for i in range(per_batch)))
            sent += per_batch
            await asyncio.sleep(max(0.0, started + second + 1 - time.monotonic()))
        return (_own_cpu() - before) / (time.monotonic() - started)


def _cpu(gateway: GatewayProcess) -> float:
    used = tree_cpu_seconds(gateway.pid)
    if used is None:
        raise RuntimeError(f"gateway {gateway.pid} is gone: {gateway.url}")
    return used


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
