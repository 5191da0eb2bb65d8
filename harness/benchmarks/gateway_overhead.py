"""The gateway on the whole real chain: resilient vs passthrough, the Toxiproxy hop, the highest
sustained rate with 5 and 50 models, and memory at 50 and 500 models.

Both gateways run at once against the same stack (CPU over the same seconds), then one after the
other (p50 without the other's load); rounds alternate between them so machine noise hits both
alike. Load comes from `loadgen` in its own process. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.benchmarks import callgrind
from harness.benchmarks.probe_cost import probe_cost
from harness.benchmarks.readme import bench_command, publish
from harness.gateway.launch import gateway_config
from harness.run import GatewayProcess
from harness.stack import Stack, start_stack
from harness.stack.processes import raise_on_sigterm
from reports.stats import quantile_interval

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_clock(pid: int) -> int:
    """The CPU clock of process `pid` (all its threads, ended ones included), as Linux's
    clock_getcpuclockid(3) names it: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)."""
    return ((~pid) << 3) | 2


def _has_cpu_clocks() -> bool:
    try:
        time.clock_gettime(process_cpu_clock(os.getpid()))
    except (OSError, AttributeError):
        return False
    return True


CPU_CLOCKS = _has_cpu_clocks()
"""Whether another process's CPU time can be read in nanoseconds here (Linux)."""


def cpu_seconds(pid: int) -> float:
    """CPU the process has used: its CPU clock, to the nanosecond, where the kernel offers one,
    else /proc's clock ticks (10 ms: ~2.4 % of a 5 s round at 300 requests/s, coarse beside a
    5 % target). Not the threads' schedstat summed: a thread that ends takes its time with it."""
    if CPU_CLOCKS:
        return time.clock_gettime(process_cpu_clock(pid))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_load(
    url: str, *, rate: float = 0.0, duration: float = 5.0, concurrency: int = 64
) -> subprocess.Popen[str]:
    """The load generator in its own process, started and left running."""
    command = [sys.executable, "-m", "harness.benchmarks.loadgen", "--url", f"{url}/v1/chat/completions"]
    command += ["--rate", str(rate), "--duration", str(duration), "--concurrency", str(concurrency)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def load_figures(process: subprocess.Popen[str], timeout: float) -> dict[str, float]:
    """What a started load generator printed, once it ends by itself (its duration is bounded)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}): {err.strip()[-400:]}")
    return dict(json.loads(out))


def load(url: str, *, rate: float = 0.0, duration: float = 5.0, concurrency: int = 64) -> dict[str, float]:
    return load_figures(start_load(url, rate=rate, duration=duration, concurrency=concurrency), duration + 60)


@dataclass(frozen=True)
class Side:
    """One gateway of a measured pair: its label, its mode, and whether it is pointed at the
    stack's first model only (every request to model-0, as the sequential plan sends them)."""

    label: str
    mode: str
    first_model_only: bool = False


@dataclass(frozen=True)
class _FirstModel:
    models: list[str]
    proxy_urls: dict[str, str]


ALONE_PAIRS = 2
"""Alone runs per gateway in a round, in mirrored order (A B B A). The p50 target is 1 %, and
one pair of 5 s alone runs differs by ~1 % (standard deviation) even between identical
gateways (24 rounds of two passthrough and two resilient gateways, 4 December): with one pair a
round, the 20 rounds' 95 % interval reached ~0.6 % either side of its median, so a gateway
0.5 % slower could read "inconclusive" (4af7d1b: +0.5 %, -0.0 % to +1.1 %). Two pairs a round
narrow it by ~1/sqrt(2) for 200 s more per pair of gateways; mirroring also cancels a drift
that is linear over the round."""

RESILIENT_VS_CONTROL = (Side("resilient", "resilient"), Side("passthrough", "passthrough"))
A_A = (Side("passthrough A", "passthrough"), Side("passthrough B", "passthrough"))
"""Two identical gateways measured the same way: how far apart the method puts equals."""
ROUTING = (Side("passthrough on model-0", "passthrough", True), Side("passthrough", "passthrough"))
"""No policies on either side, one sending everything to the first of five models as the
sequential plan does, the other round-robin: what the five-model pair owes to routing."""


def _pointed(stack: Stack, side: Side) -> Stack | _FirstModel:
    if not side.first_model_only:
        return stack
    first = stack.models[0]
    return _FirstModel([first], {first: stack.proxy_urls[first]})


def overhead(
    folder: Path,
    rounds: int,
    rate: float,
    duration: float,
    models: int = 5,
    pair: tuple[Side, Side] = RESILIENT_VS_CONTROL,
) -> dict[str, Any]:
    """Both gateways take the same load at the same time, each from its own load generator, and
    each round compares their CPU over the same seconds: this VM's speed moves by tens of
    percent from one round to the next, and a paired round sees the same machine on both sides.
    Which gateway starts first, and whose load starts first, is swapped between halves and
    between rounds: an A/A pair showed the first-started one paying ~2 % more.

    Each round then loads the two gateways one after the other, alone, `ALONE_PAIRS` times in
    mirrored order, for the p50 judged against its target: with both loaded at once, each waits
    for the cores behind the other and two load generators (p50 56 ms against 31 ms direct on a
    busy day), which turns a few percent of CPU into latency that a deployment of one gateway
    does not see, and an A/A pair read -0.9 % (95 % interval -1.4 % to -0.5 %) there. Whether
    the seconds between the two alone runs move their p50 less than 1 % is what the A/A pair's
    p50 alone shows.

    With one model both modes route identically, so the difference is the policies alone;
    with five, passthrough spreads round-robin while the resilient sequential plan uses model-0."""
    stack = start_stack(models, folder / f"overhead{models}-{pair[0].label.replace(' ', '')}")
    samples: dict[str, list[dict[str, float]]] = {side.label: [] for side in pair}
    alone: dict[str, list[dict[str, float]]] = {side.label: [] for side in pair}
    try:
        for half in range(2):
            order = pair if half == 0 else pair[::-1]
            gateways = {}
            for side in order:
                slug = f"{side.label.replace(' ', '-')}-{models}-{half}"
                config = gateway_config(_pointed(stack, side), side.mode)
                gateways[side.label] = GatewayProcess.start(config, folder, slug)
            for gateway in gateways.values():
                load(gateway.url, rate=rate, duration=1.0)  # warm-up
            for turn in range((rounds + 1 - half) // 2):
                starts = list(gateways.items())[:: 1 if turn % 2 == 0 else -1]
                before = {label: cpu_seconds(gateway.pid) for label, gateway in starts}
                running = {
                    label: start_load(gateway.url, rate=rate, duration=duration) for label, gateway in starts
                }
                for label, process in running.items():
                    figures = load_figures(process, duration + 60)
                    figures["cpu_s_per_1000"] = (
                        (cpu_seconds(gateways[label].pid) - before[label]) / figures["requests"] * 1000
                    )
                    samples[label].append(figures)
                for repeat in range(ALONE_PAIRS):
                    for label, gateway in starts[:: -1 if repeat % 2 == 0 else 1]:
                        alone[label].append(load(gateway.url, rate=rate, duration=duration))
            for gateway in gateways.values():
                gateway.stop()
        hop = None
        if pair == RESILIENT_VS_CONTROL:
            direct = load(stack.endpoint_urls["model-0"], rate=rate, duration=duration)
            proxied = load(stack.proxy_urls["model-0"], rate=rate, duration=duration)
            hop = {"direct_p50_ms": direct["p50_ms"], "proxied_p50_ms": proxied["p50_ms"]}
    finally:
        stack.stop()
    return {
        **summarise(samples, alone, (pair[0].label, pair[1].label)),
        "toxiproxy_hop": hop,
        "models": models,
    }


Rounds = dict[str, list[dict[str, float]]]


def summarise(both_loaded: Rounds, alone: Rounds, labels: tuple[str, str]) -> dict[str, Any]:
    """A pair's figures from its rounds: CPU, p99 and the shared p50 from the rounds that
    loaded both at once, the judged p50 from the rounds that loaded each alone."""
    keys = ("p50_ms", "p99_ms", "cpu_s_per_1000", "rate")
    medians = {
        label: {k: statistics.median(s[k] for s in runs) for k in keys}
        | {"alone_p50_ms": statistics.median(s["p50_ms"] for s in alone[label])}
        for label, runs in both_loaded.items()
    }
    first, second = labels
    return {
        "per_mode": medians,
        "paired_cpu_change": _paired_change(both_loaded[first], both_loaded[second], "cpu_s_per_1000"),
        "paired_p50_change": _paired_change(alone[first], alone[second], "p50_ms"),
        "paired_shared_p50_change": _paired_change(both_loaded[first], both_loaded[second], "p50_ms"),
        "errors": {label: sum(s["errors"] for s in [*both_loaded[label], *alone[label]]) for label in labels},
    }


def _paired_change(ours: list[dict[str, float]], theirs: list[dict[str, float]], key: str) -> dict[str, Any]:
    """Each round's change of `key` against the gateway measured over the same seconds, and
    their median: a round that hit a slow patch of the VM hit both sides of its pair."""
    rounds = [a[key] / b[key] - 1 for a, b in zip(ours, theirs, strict=True)]
    return {"median": statistics.median(rounds), "rounds": rounds}


def instructions(folder: Path, duration: float, models: int = 1) -> dict[str, Any]:
    """Instructions each gateway mode executes per request, counted by callgrind on the same
    chain: CPU seconds on a shared VM move ±25 % between identical rounds, the count by a few
    tenths of a percent (timers, collections and the requests cut by the window's edges).
    Under callgrind the gateway runs ~50x slower, so the load is a small closed loop, long
    enough for a thousand or so requests. That slowness is in the count: per-second work is
    shared by fewer requests, and the upstream calls per request (counted too) show the slow
    first answers the soft cap sent on to a second model (natively once in 6,000 at 300/s)."""
    if not callgrind.available():
        return {"skipped": callgrind.MISSING}
    stack = start_stack(models, folder / f"instructions{models}")
    per_request: dict[str, float] = {}
    upstream: dict[str, float] = {}
    requests: list[int] = []
    try:
        for mode in ("passthrough", "resilient"):
            counts = folder / f"callgrind-{mode}-{models}.out"
            name = f"gateway-cg-{mode}-{models}"
            gateway = GatewayProcess.start(
                gateway_config(stack, mode), folder, name, callgrind.launcher(counts)
            )
            load(gateway.url, concurrency=4, duration=3.0)  # warm-up, not counted
            stack.reset_endpoint_counts()
            callgrind.counting(gateway.pid, True)
            figures = load(gateway.url, concurrency=4, duration=duration)
            callgrind.counting(gateway.pid, False)
            calls = upstream_calls(stack.endpoint_counts())
            gateway.stop(timeout=120)  # callgrind writes its counts as the gateway exits
            if figures["errors"]:
                raise RuntimeError(f"{figures['errors']} errors while counting {mode} instructions")
            per_request[mode] = callgrind.total(counts) / figures["requests"]
            upstream[mode] = calls / figures["requests"]
            requests.append(figures["requests"])
    finally:
        stack.stop()
    return {
        "per_request": per_request,
        "upstream_per_request": upstream,
        "models": models,
        "requests": min(requests),
    }


def upstream_calls(counts: dict[str, Any]) -> int:
    """Every call the endpoints answered (health probes included), whatever its outcome."""
    return sum(sum(second.values()) for model in counts.values() for second in model["per_second"].values())


SATURATION_STEPS = (32, 64, 128, 256, 512)


def _saturate(url: str, duration: float) -> dict[str, Any]:
    """Raise the number in flight until throughput stops growing (< 5 %) or errors appear: the
    highest error-free rate is what the stack sustains, not what one concurrency happens to give."""
    best: dict[str, Any] = {}
    for in_flight in SATURATION_STEPS:
        figures = {**load(url, concurrency=in_flight, duration=duration), "in_flight": in_flight}
        if figures["errors"]:
            break
        if best and figures["rate"] < best["rate"] * 1.05:
            best = figures if figures["rate"] > best["rate"] else best
            break
        best = figures
    return best or figures


def scale(folder: Path, models: int, duration: float) -> dict[str, Any]:
    stack = start_stack(models, folder / f"stack{models}")
    gateway = None
    try:
        gateway = GatewayProcess.start(gateway_config(stack, "resilient"), folder, f"gateway-{models}")
        url = gateway.url
        endpoints_pid = stack.children[0].pid
        figures = _saturate(url, duration)
        return {
            "models": models,
            "max_rate": figures["rate"],
            "in_flight": figures["in_flight"],
            "p50_ms": figures["p50_ms"],
            "errors": figures["errors"],
            "endpoints_rss_mib": rss_mib(endpoints_pid),
            "gateway_rss_mib": rss_mib(gateway.pid),
        }
    finally:
        if gateway is not None:
            gateway.stop()
        stack.stop()


_CPU_SOURCES = {
    "cpu_clock": "CPU: each gateway's process CPU clock, in nanoseconds (clock_getcpuclockid). ",
    "ticks": "CPU: /proc's user + system time, in 10 ms ticks. ",
}


def render(data: dict[str, Any], command: str) -> str:
    lines = [
        "## Gateway on the real chain (Locust-free load, open loop)",
        "",
        f"Command: `{command}`; {data['rounds']} paired rounds of {data['duration']} s: both "
        f"gateways take {data['rate']:.0f} requests/s at the same time, each from its own load "
        "generator, and each round compares their CPU over the same seconds; then each round loads "
        f"the two one after the other, alone, {ALONE_PAIRS} times in mirrored order (A B B A), for the "
        "p50 (medians of rounds; each alone pair is a paired change of its own). "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "load generators, gateways, endpoints and Toxiproxy share those cores. "
        + _CPU_SOURCES.get(data.get("cpu_source", "ticks"), "")
        + "Targets: resilient adds <= 1 % p50 and <= 5 % CPU.",
        "",
        "| models | mode | p50 ms, alone | p50 ms, both loaded | p99 ms | gateway CPU s / 1,000 requests |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for run in data["overhead"]:
        res, base = run["per_mode"]["resilient"], run["per_mode"]["passthrough"]
        n = run["models"]
        lines += [
            _row(n, "passthrough (control)", base),
            _row(n, "resilient", res),
            f"| {n} | **resilient vs passthrough** | **{_judged(run, 'p50')}** | "
            f"{_paired(run, 'shared_p50')} | {_change(res, base, 'p99_ms')} | **{_judged(run, 'cpu')}** |",
        ]
    lines += [
        "",
        "CPU and p50 changes: the median of the paired changes (each round compares the two "
        "gateways over the same seconds, or, alone, one right after the other) with its 95 % "
        "interval, distribution-free (the order statistics a binomial law gives: with 20 changes, the "
        "6th to the 15th smallest; with 40, the 14th to the 27th), judged as the reports judge: pass "
        "when the whole interval is within the target, fail when none of it is, inconclusive when "
        "it straddles; p99: the "
        "ratio of the rounds' medians (both loaded). The p50 is judged alone: loaded at once, each "
        "gateway also waits for the cores behind the other one and two load generators, which turns "
        "a few percent more CPU into latency that one gateway on its own does not see.",
    ]
    if "a_a" in data:
        a_a = data["a_a"]
        lines.append(
            f"The same method on two identical passthrough gateways (1 model) reads CPU {_paired(a_a, 'cpu')}"
            f", p50 alone {_paired(a_a, 'p50')}, p50 both loaded {_paired(a_a, 'shared_p50')}: the size "
            "of a difference it cannot tell from noise."
        )
    counts = data.get("instructions", [])
    skipped = [c["skipped"] for c in counts if "skipped" in c]
    if skipped:
        lines += ["", f"Instructions per request: not counted ({skipped[0]})."]
    elif counts:
        lines += [
            "",
            "Instructions per request, counted by callgrind on the same chain (unlike CPU seconds on "
            "this shared VM, they move only by a few tenths of a percent between identical runs). Under "
            "callgrind a gateway runs ~50x slower, which its count sees: work done a few times a second "
            "(deadline timers firing, health probes) is shared by ~50x fewer requests, and with several "
            "models the resilient one's soft cap, set from the first answers it timed, sends some slow "
            "ones on to a second model (natively 1 request in 6,000 at 300/s; upstream calls per request, "
            "health probes included, below):",
            "",
        ]
        for counted in counts:
            res, base = counted["per_request"]["resilient"], counted["per_request"]["passthrough"]
            calls = counted.get("upstream_per_request")
            lines.append(
                f"- {counted['models']} model{'s' if counted['models'] > 1 else ''}: passthrough "
                f"{base / 1000:.0f} k, resilient {res / 1000:.0f} k, **{res / base - 1:+.1%}**"
                + (f" (at least {counted['requests']} requests each" if "requests" in counted else "")
                + (
                    f"; upstream calls per request {calls['passthrough']:.3f} and {calls['resilient']:.3f})"
                    if calls
                    else ")"
                )
            )
    hop = data["overhead"][0]["toxiproxy_hop"]
    errors = {run["models"]: run["errors"] for run in data["overhead"]}
    lines += [
        "",
        "With 1 model both modes route identically: the difference is the policies alone. With 5, "
        "passthrough spreads round-robin while the resilient (sequential) plan sends all to model-0.",
        *_routing_lines(data.get("routing")),
        f"Errors during these rounds: {errors}.",
        "",
        f"Toxiproxy hop: p50 {hop['direct_p50_ms']:.2f} ms direct to an endpoint, "
        f"{hop['proxied_p50_ms']:.2f} ms through its proxy "
        f"({hop['proxied_p50_ms'] - hop['direct_p50_ms']:+.2f} ms).",
        "",
        "Highest rate sustained: requests in flight raised (32, 64, 128, ...) until throughput grew by "
        "less than 5 % or an error appeared; the best error-free step is shown.",
        "",
        "| models | highest rate | in flight | p50 ms | errors | endpoints RSS MiB | gateway RSS MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in data["scale"]:
        lines.append(
            f"| {row['models']} | {row['max_rate']:.0f}/s | {row.get('in_flight', 64)} | "
            f"{row['p50_ms']:.1f} | {row['errors']} | {row['endpoints_rss_mib']:.0f} | "
            f"{row['gateway_rss_mib']:.0f} |"
        )
    if "probes" in data:
        lines += ["", *_probe_lines(data["probes"])]
    return "\n".join(lines) + "\n"


def _routing_lines(routing: dict[str, Any] | None) -> list[str]:
    """What sending every request to one of five models costs with no policies at all: the
    part of the five-model pair that is routing."""
    if routing is None:
        return []
    one, spread = routing["per_mode"]["passthrough on model-0"], routing["per_mode"]["passthrough"]
    return [
        "The same method on that difference alone, with no policies on either side (two passthrough "
        "gateways on 5 models, one pointed at model-0 only, the other round-robin): CPU "
        f"{_paired(routing, 'cpu')}, p50 alone {_paired(routing, 'p50')}, "
        f"p99 {_change(one, spread, 'p99_ms')}."
    ]


def _probe_lines(probes: dict[str, Any]) -> list[str]:
    return [
        f"Health checks at {probes['models']} idle models (default policy: every "
        f"{probes['interval']:g} s, {probes['probes_per_second']:.1f} probes/s): the gateway with them "
        f"used {probes['checked_cpu_share']:.2%} of one core, the same gateway without them "
        f"{probes['unchecked_cpu_share']:.2%}, over the same {probes['seconds']:g} s: the probes cost "
        f"**{probes['probe_cpu_share']:.2%} of one core** (target: under 1 %). The same requests from a "
        f"bare aiohttp session, batched once a second, cost {probes['bare_client_cpu_share']:.2%}: "
        "why probes have a kept connection and a minimal HTTP/1.1 exchange of their own "
        "(`harness/gateway/probe_client.py`) instead of the gateway's aiohttp session.",
    ]


def _row(models: int, label: str, figures: dict[str, float]) -> str:
    return (
        f"| {models} | {label} | {figures['alone_p50_ms']:.2f} | {figures['p50_ms']:.2f} | "
        f"{figures['p99_ms']:.2f} | {figures['cpu_s_per_1000']:.3f} |"
    )


def _change(ours: dict[str, float], base: dict[str, float], key: str) -> str:
    return f"{ours[key] / base[key] - 1:+.1%}"


TARGETS = {"p50": 0.01, "cpu": 0.05}
"""The policies' budget over passthrough (issue 16): p50 latency and gateway CPU per request."""


def _paired(run: dict[str, Any], figure: str) -> str:
    """The median of the rounds' paired changes, its 95 % interval (the order-statistic one the
    reports use, distribution-free: with 20 rounds, the 6th to the 15th smallest)."""
    change = run[f"paired_{figure}_change"]
    low, high = quantile_interval(change["rounds"], 50) or (-math.inf, math.inf)
    shown = [f"{end:+.1%}" if math.isfinite(end) else "open" for end in (low, high)]
    return f"{change['median']:+.1%} (95 % interval {shown[0]} to {shown[1]})"


def _judged(run: dict[str, Any], figure: str) -> str:
    """Pass when the whole interval is within the target, fail when none of it is, else
    inconclusive: the same rule as the reports' verdicts."""
    low, high = quantile_interval(run[f"paired_{figure}_change"]["rounds"], 50) or (-math.inf, math.inf)
    target = TARGETS[figure]
    verdict = "pass" if high <= target else "fail" if low > target else "inconclusive"
    return f"{_paired(run, figure)}, {verdict} against <= {target:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/gateway.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    command = bench_command("harness.benchmarks.gateway_overhead", argv)
    raise_on_sigterm()  # so the stacks' finally blocks run when the bench is stopped
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data: dict[str, Any] = {"rounds": args.rounds, "rate": args.rate, "duration": args.duration}
        data["cpu_source"] = "cpu_clock" if CPU_CLOCKS else "ticks"
        data["overhead"] = [overhead(folder, args.rounds, args.rate, args.duration, n) for n in (1, 5)]
        data["a_a"] = overhead(folder, args.rounds, args.rate, args.duration, 1, A_A)
        data["routing"] = overhead(folder, args.rounds, args.rate, args.duration, 5, ROUTING)
        data["instructions"] = [instructions(folder, 6 * args.duration, n) for n in (1, 5)]
        data["scale"] = [
            scale(folder, 5, args.duration),
            scale(folder, 50, args.duration),
            scale(folder, 500, args.duration),
        ]
        data["probes"] = probe_cost(folder)
    text = render(data, command)
    publish(text, data, args.out, args.readme, "gateway")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
