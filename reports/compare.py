"""Regression table between two runs of a scenario: what got worse, by how much."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reports.slo import show

HIGHER_IS_BETTER = frozenset({"uptime", "degraded_capacity"})
COMPARED = (
    "uptime",
    "failure_impact",
    "recovery_time_s",
    "time_to_detect_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "ttft_p50_ms",
    "fallback_latency_increase",
    "degraded_capacity",
    "retry_amplification",
    "truncated_successes",
    "cpu_s_per_1000",
)


@dataclass(frozen=True, slots=True)
class Change:
    """One SLI in the baseline run and the new one; `worse_by` is relative (0.1 = 10 % worse)."""

    sli: str
    before: float | None
    after: float | None
    worse_by: float | None

    def regressed(self, tolerance: float) -> bool:
        return self.worse_by is not None and self.worse_by > tolerance


def _worse_by(sli: str, before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None if before == after else (math.inf if after is None else None)
    if sli == "uptime":  # near 1: compare the downtime, 99.9 % -> 99.8 % is twice as bad
        return _relative(1 - before, 1 - after)
    if sli in HIGHER_IS_BETTER:
        return _relative(after, before)
    return _relative(before, after)


def _relative(good: float, bad: float) -> float:
    """How much bigger `bad` is than `good`, relative; from 0 a rise is infinitely worse."""
    if good == bad:
        return 0.0
    if good == 0:
        return math.inf if bad > 0 else -math.inf
    return (bad - good) / abs(good)


def compare(new: dict[str, Any], old: dict[str, Any]) -> list[Change]:
    """Changes of the system under test's SLIs from `old` results to `new` results."""
    after = new["variants"][new["main"]]["slis"]
    before = old["variants"][old["main"]]["slis"]
    return [
        Change(s, before.get(s), after.get(s), _worse_by(s, before.get(s), after.get(s))) for s in COMPARED
    ]


def render(changes: list[Change], tolerance: float, watched: set[str]) -> str:
    lines = [f"  {'SLI':<28}{'before':>12}{'after':>12}{'change':>10}  "]
    for change in changes:
        flag = ""
        if change.regressed(tolerance):
            flag = "REGRESSED" if change.sli in watched else "worse"
        worse = "-" if change.worse_by is None else _percent(change.worse_by)
        lines.append(
            f"  {change.sli:<28}{show(change.sli, change.before):>12}{show(change.sli, change.after):>12}"
            f"{worse:>10}  {flag}"
        )
    return "\n".join(lines)


def _percent(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.1f}%"
