"""Our gateway's CPU per request against an earlier commit's, side by side on one stack.

Issue 15's speed goal is relative: the gateway's CPU per request halved from the ~0.7 ms it
used on 23 November (81d79b4, the default `--base`). A figure from that day's bench run would
compare two different days of this shared VM, whose speed moves by tens of percent; so the old
gateway is checked out beside this one (`git worktree`, removed afterwards) and both are
measured in the same minutes: each round loads one, then the other, alone, in alternating
order, and the verdict is the median of the rounds' paired changes with its distribution-free
95 % interval, judged as the reports judge (pass only when the whole interval is past the goal).

Run with `make bench` or `python -m harness.benchmarks.versus [--base REV]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.benchmarks.gateway_overhead import cpu_seconds, load
from harness.benchmarks.readme import bench_command, publish
from harness.gateway.launch import gateway_config
from harness.run import GatewayProcess
from harness.stack import start_stack
from harness.stack.processes import raise_on_sigterm
from reports.stats import quantile_interval

BASE = "81d79b4"
"""The gateway of 23 November 2026, which used ~0.7 ms of CPU per request."""
GOAL = -0.5
"""Issue 15: CPU per request halved."""
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class NoSuchCommit(RuntimeError):
    """The base is not in this checkout (a shallow clone, or a typo)."""


def checkout(base: str, folder: Path) -> Path:
    """The project at `base`, checked out in `folder` (detached; `remove` takes it away)."""
    if _commit(base) is None:
        raise NoSuchCommit(f"{base!r} is not a commit of {PROJECT_ROOT} (a shallow clone lacks it)")
    tree = folder / "base"
    subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "worktree", "add", "--detach", "--quiet", str(tree), base],
        check=True,
        capture_output=True,
    )
    return tree


def remove(tree: Path) -> None:
    subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True
    )


def launcher(tree: Path) -> list[str]:
    """Runs the gateway command from `tree`, whose `harness` package `python -m` then finds
    first (the current directory leads `sys.path`, ahead of the editable install's finder)."""
    return ["sh", "-c", 'cd "$0" && exec "$@"', str(tree)]


def rounds(
    urls: dict[str, str], pids: dict[str, int], count: int, rate: float, duration: float
) -> dict[str, list[float]]:
    """CPU ms per request of each gateway, loaded alone, in alternating order round by round."""
    spent: dict[str, list[float]] = {label: [] for label in urls}
    labels = list(urls)
    for turn in range(count):
        for label in labels if turn % 2 == 0 else labels[::-1]:
            before = cpu_seconds(pids[label])
            figures = load(urls[label], rate=rate, duration=duration)
            if figures["errors"]:
                raise RuntimeError(f"{figures['errors']} errors from the {label} gateway")
            spent[label].append((cpu_seconds(pids[label]) - before) / figures["requests"] * 1000)
        print(f"round {turn + 1}/{count}: " + ", ".join(f"{k} {v[-1]:.3f} ms" for k, v in spent.items()))
    return spent


def summarise(base: Sequence[float], head: Sequence[float], goal: float = GOAL) -> dict[str, Any]:
    """The median paired change and its interval; pass when the whole interval is at or past
    the goal, fail when none of it is, inconclusive when it straddles it."""
    changes = [new / old - 1 for old, new in zip(base, head, strict=True)]
    interval = quantile_interval(changes, 50)
    low, high = interval if interval is not None else (-1.0, float("inf"))
    verdict = "pass" if high <= goal else "fail" if low > goal else "inconclusive"
    return {
        "base_ms": statistics.median(base),
        "head_ms": statistics.median(head),
        "change": statistics.median(changes),
        "interval": [low, high],
        "rounds": changes,
        "verdict": verdict,
    }


def measure(base: str, count: int, rate: float, duration: float, mode: str, folder: Path) -> dict[str, Any]:
    tree = checkout(base, folder)
    stack = start_stack(1, folder / "stack")
    gateways: dict[str, GatewayProcess] = {}
    try:
        config = gateway_config(stack, mode)
        gateways["base"] = GatewayProcess.start(config, folder, "base", launcher(tree))
        gateways["head"] = GatewayProcess.start(config, folder, "head")
        for gateway in gateways.values():
            load(gateway.url, rate=rate, duration=1.0)  # warm-up
        urls = {label: g.url for label, g in gateways.items()}
        spent = rounds(urls, {label: g.pid for label, g in gateways.items()}, count, rate, duration)
    finally:
        for gateway in gateways.values():
            gateway.stop()
        stack.stop()
        remove(tree)
    return {**summarise(spent["base"], spent["head"]), "cpu_ms": spent}


def render(data: dict[str, Any], command: str) -> str:
    low, high = data["interval"]
    return "\n".join(
        [
            "## Speed: our gateway against an earlier commit",
            "",
            f"Command: `{command}`; {data['count']} rounds of {data['duration']} s at {data['rate']:g} "
            f"requests/s, each gateway ({data['mode']}, 1 model) loaded alone, in alternating order, "
            f"on one stack; CPU from each gateway's process clock. Base: {data['base']} "
            f"({data['base_commit'][:12]}), head: {data['head_commit'][:12]}.",
            "",
            "| gateway | CPU ms / request (median of rounds) |",
            "| --- | ---: |",
            f"| base ({data['base']}) | {data['base_ms']:.3f} |",
            f"| head | {data['head_ms']:.3f} |",
            "",
            f"Paired change: **{data['change']:+.1%} (95 % interval {low:+.1%} to {high:+.1%}), "
            f"{data['verdict']} against the goal of {GOAL:.0%}** (pass only when the whole interval is "
            "at or past it; the interval is the order statistics a binomial law gives, as in the "
            "reports).",
            "",
        ]
    )


def _commit(rev: str) -> str | None:
    """The full hash of `rev`, None when this checkout has no such commit."""
    found = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE, help=f"the commit to compare against (default {BASE})")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--mode", choices=("resilient", "passthrough"), default="resilient")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/speed.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    command = bench_command("harness.benchmarks.versus", argv)
    raise_on_sigterm()  # so the worktree, the stack and the gateways go when the bench is stopped
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = measure(args.base, args.rounds, args.rate, args.duration, args.mode, Path(tmp))
    except NoSuchCommit as exc:
        print(f"error: {exc}")
        return 2
    data |= {"count": args.rounds, "rate": args.rate, "duration": args.duration, "mode": args.mode}
    data |= {
        "base": args.base,
        "base_commit": _commit(args.base) or args.base,
        "head_commit": _commit("HEAD") or "HEAD",
    }
    publish(render(data, command), data, args.out, args.readme, "speed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
