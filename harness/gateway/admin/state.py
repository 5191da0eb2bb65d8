"""What the operator sees besides the routers' own state: recent audit records, traffic shares,
the degraded-mode switch and the harness run's status. No I/O: the gateway feeds it."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from resilience_core import AUDITED, Event, HealthThresholds, ModelRouter, audit_record

RECENT_AUDIT = 50
"""Audit records kept in memory for the dashboard; the file keeps them all."""
TRAFFIC_WINDOW = 3.0
"""Seconds over which traffic shares are measured: short enough to show an isolation quickly."""
DEFAULT_DEGRADED_ANSWER = (
    "The service is in degraded mode and cannot answer right now; please try again shortly."
)
HEALTH = HealthThresholds()
"""The core's health thresholds, applied to live traffic's error rate."""

Key = tuple[str, str]
"""(group, model label)."""
Pools = Mapping[str, list[tuple[str, Any]]]
"""Group -> [(label, upstream)]: every gateway has them, passthrough has nothing else."""
NO_ROUTER: dict[str, Any] = {
    "circuit": None,
    "drained": False,
    "weight": None,
    "effective_weight": None,
    "restoration_share": None,
    "error_rate": None,
    "p50": None,
    "p99": None,
}
"""A passthrough model's state: counted, but no breaker, weight or rolling figures."""


def finite(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None, so browsers can parse the JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def model_states(
    routers: Mapping[str, ModelRouter], pools: Pools, passed: Mapping[Key, int]
) -> dict[str, list[dict[str, Any]]]:
    """Every group's models as the routers see them; counts alone in passthrough."""
    if routers:
        return {name: router.state() for name, router in routers.items()}
    return {
        group: [{**NO_ROUTER, "model": label, "calls": passed.get((group, label), 0)} for label, _ in pool]
        for group, pool in pools.items()
    }


def call_counts(
    routers: Mapping[str, ModelRouter], pools: Pools, passed: Mapping[Key, int]
) -> dict[Key, int]:
    """Calls so far per (group, model): what traffic shares are measured from."""
    if routers:
        return {
            (group, label): handle.metrics.calls
            for group, router in routers.items()
            for label, handle in router.models.items()
        }
    return {
        (group, label): passed.get((group, label), 0) for group, pool in pools.items() for label, _ in pool
    }


def health_of(model: Mapping[str, Any]) -> str:
    """One word for a model's condition, from its breaker, drain flag, restoration and error rate."""
    circuit = model.get("circuit")
    if circuit is None:
        return "unknown"  # passthrough: no breaker, no judgement
    if circuit == "isolated":
        return "isolated"
    if model.get("drained"):
        return "drained"
    if circuit == "open" or model.get("unhealthy"):
        return "unhealthy"
    share = model.get("restoration_share")
    if circuit == "half_open" or (share is not None and share < 1.0):
        return "recovering"
    status, _ = HEALTH.classify(model.get("error_rate") or 0.0, None)
    return status.value


class RecentAudit:
    """The last audited records, as the audit file writes them plus the group they came from."""

    def __init__(self, size: int = RECENT_AUDIT, wall_clock: Callable[[], float] = time.time) -> None:
        self.records: deque[dict[str, Any]] = deque(maxlen=size)
        self.wall_clock = wall_clock

    def add(self, event: Event, group: str | None) -> bool:
        """Keep `event` if the audit trail would; True when kept."""
        if not isinstance(event, AUDITED):
            return False
        record = audit_record(event, self.wall_clock())
        record["group"] = group
        self.records.append(finite(record))
        return True

    def last(self) -> list[dict[str, Any]]:
        return list(self.records)


class TrafficWindow:
    """Per-model call counts sampled about once a second; rates and shares over the last seconds."""

    def __init__(self, window: float = TRAFFIC_WINDOW) -> None:
        self.window = window
        self.samples: deque[tuple[float, dict[Key, int]]] = deque()

    def sample(self, now: float, counts: dict[Key, int]) -> None:
        self.samples.append((now, dict(counts)))
        while len(self.samples) > 1 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def rates(self, now: float, counts: dict[Key, int]) -> dict[Key, float]:
        """Calls per second of each model since the sample about `window` seconds ago."""
        if not self.samples:
            return {key: 0.0 for key in counts}
        then, before = self.samples[0]
        elapsed = max(now - then, 1e-6)
        return {key: max(count - before.get(key, 0), 0) / elapsed for key, count in counts.items()}

    @staticmethod
    def shares(rates: dict[Key, float]) -> dict[Key, float]:
        """Each model's share of its group's calls (0 for all when the group had none)."""
        totals: dict[str, float] = {}
        for (group, _), rate in rates.items():
            totals[group] = totals.get(group, 0.0) + rate
        return {key: (rate / totals[key[0]] if totals[key[0]] else 0.0) for key, rate in rates.items()}


@dataclass(frozen=True, slots=True)
class DegradedMode:
    """The global switch: while enabled, every chat request gets the degraded answer."""

    enabled: bool = False
    since: float | None = None
    who: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "since": self.since, "who": self.who, "reason": self.reason}


class OperatorState:
    """Everything the admin API and dashboard add to the routers' state."""

    def __init__(self, degraded_answer: str | None = None, wall_clock: Callable[[], float] = time.time):
        self.wall_clock = wall_clock
        self.recent = RecentAudit(wall_clock=wall_clock)
        self.traffic = TrafficWindow()
        self.degraded = DegradedMode()
        self.degraded_answer = degraded_answer or DEFAULT_DEGRADED_ANSWER
        self.run_status: dict[str, Any] | None = None

    def set_run_status(self, status: dict[str, Any]) -> None:
        self.run_status = {**status, "received": self.wall_clock()}

    def run(self) -> dict[str, Any] | None:
        """The last run status with its age in seconds, or None when no run reported."""
        if self.run_status is None:
            return None
        return {**self.run_status, "age": round(self.wall_clock() - self.run_status["received"], 2)}

    def decorate(
        self, groups: dict[str, list[dict[str, Any]]], now: float
    ) -> dict[str, list[dict[str, Any]]]:
        """Each model's state with its traffic rate, share and health added."""
        counts = {(group, m["model"]): int(m.get("calls") or 0) for group, ms in groups.items() for m in ms}
        rates = self.traffic.rates(now, counts)
        shares = self.traffic.shares(rates)
        return {
            group: [
                finite(
                    {
                        **m,
                        "rate": round(rates[(group, m["model"])], 3),
                        "share": round(shares[(group, m["model"])], 4),
                        "health": health_of(m),
                    }
                )
                for m in models
            ]
            for group, models in groups.items()
        }
