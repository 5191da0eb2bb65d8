"""Periodic health probes per model, with per-model thresholds and alerts on transitions."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .clock import SYSTEM_CLOCK, Clock
from .deadline import Timeout
from .events import EventBus, HealthChanged
from .metrics import percentile
from .policy import Pipeline

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0
"""BIP-03: real-time health checks at 30-second intervals."""

Probe = Callable[[], Awaitable[object]]
"""A cheap request to a model; raising (or timing out) counts as a failed probe."""


class HealthStatus(StrEnum):
    """A model's health as judged from its recent probes."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """When a model counts as degraded or unhealthy, judged over the last `window` probes.

    Usage::

        HealthThresholds(latency_degraded=1.0, error_rate_unhealthy=0.5, window=10)
    """

    latency_degraded: float = 2.0
    latency_unhealthy: float = 10.0
    error_rate_degraded: float = 0.1
    error_rate_unhealthy: float = 0.5
    unhealthy_after: int = 3
    """Consecutive failed probes that make a model unhealthy at once."""
    recover_after: int | None = None
    """Consecutive good probes after which older failures are forgotten (None: they age out of
    the window one probe at a time). 1 brings a model back at its first good probe."""
    window: int = 10
    probe_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.latency_degraded <= self.latency_unhealthy:
            raise ValueError("need 0 < latency_degraded <= latency_unhealthy")
        if not 0 < self.error_rate_degraded <= self.error_rate_unhealthy <= 1:
            raise ValueError("need 0 < error_rate_degraded <= error_rate_unhealthy <= 1")
        if self.unhealthy_after < 1 or self.window < 1 or self.probe_timeout <= 0:
            raise ValueError("unhealthy_after, window and probe_timeout must be positive")

    def judge(
        self, results: deque[tuple[bool, float]], consecutive_failures: int
    ) -> tuple[HealthStatus, str]:
        """Status and reason from (ok, latency) probe results, oldest first."""
        if consecutive_failures >= self.unhealthy_after:
            return HealthStatus.UNHEALTHY, f"{consecutive_failures} consecutive failed probes"
        failures = sum(1 for ok, _ in results if not ok)
        rate = failures / len(results) if results else 0.0
        latencies = sorted(latency for ok, latency in results if ok)
        p95 = percentile(latencies, 95) if latencies else 0.0
        return self.classify(rate, p95, "probe")

    def classify(self, error_rate: float, p95: float | None, basis: str = "call") -> tuple[HealthStatus, str]:
        """Status and reason from an error rate and a p95 latency (seconds; None = unknown),
        whether they come from probes or from live traffic."""
        if error_rate >= self.error_rate_unhealthy:
            return HealthStatus.UNHEALTHY, f"{basis} error rate {error_rate:.0%}"
        if p95 is not None and p95 >= self.latency_unhealthy:
            return HealthStatus.UNHEALTHY, f"{basis} p95 {p95:.3f}s"
        if error_rate >= self.error_rate_degraded:
            return HealthStatus.DEGRADED, f"{basis} error rate {error_rate:.0%}"
        if p95 is not None and p95 >= self.latency_degraded:
            return HealthStatus.DEGRADED, f"{basis} p95 {p95:.3f}s"
        return HealthStatus.HEALTHY, f"{basis}s within thresholds"


Alert = Callable[[HealthChanged], object]


class HealthChecker:
    """Probes every model each `interval` seconds and reports status changes.

    Usage::

        checker = HealthChecker({"gpt-a": probe_a}, interval=30.0)
        checker.on_alert(lambda change: print(change.model, change.to_state))
        checker.start()          # background task; `await checker.stop()` ends it
    """

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        interval: float = DEFAULT_INTERVAL,
        thresholds: HealthThresholds | None = None,
        per_model: Mapping[str, HealthThresholds] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        events: EventBus | None = None,
        fast_interval: float | None = None,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        urgent: Callable[[str], bool] | None = None,
        first_after: float | None = None,
        paused: Callable[[str], bool] | None = None,
        batch: float = 0.0,
    ) -> None:
        if interval <= 0 or (fast_interval is not None and fast_interval <= 0) or not 0 <= jitter < 1:
            raise ValueError("interval and fast_interval must be > 0, jitter within [0, 1)")
        self.interval = interval
        self.fast_interval = fast_interval if fast_interval is not None else interval
        """The longest wait between probes of a model that is not healthy (or `urgent` says so)."""
        self.jitter = jitter
        """Each wait is stretched or shrunk by up to this share: a large pool never probes in step."""
        self.rng = rng if rng is not None else random.Random()
        self.urgent = urgent
        """Whether a model needs probing at the fast pace anyway (e.g. its circuit is open)."""
        self.first_after = first_after
        """Seconds before the first probes (None: spread over the first interval)."""
        self.paused = paused
        """Whether a model must get no probe now (an operator isolated it: no traffic at all);
        its turn is skipped, its status kept, and it is looked at again at its next turn."""
        self.batch = batch
        """Normal-pace probes due within this many seconds go out together, early: each wake-up
        of this loop costs the process about as much as a probe, and 500 models every 30 s would
        otherwise wake it 17 times a second. Fast-pace probes always keep their time."""
        self.clock = clock
        self.events = events if events is not None else EventBus()
        self._probes = dict(probes)
        self._default = thresholds if thresholds is not None else HealthThresholds()
        self._per_model = dict(per_model or {})
        self._results = {
            m: deque[tuple[bool, float]](maxlen=self._thresholds(m).window) for m in self._probes
        }
        self._consecutive = dict.fromkeys(self._probes, 0)
        self._status = dict.fromkeys(self._probes, HealthStatus.HEALTHY)
        self._alerts: list[Alert] = []
        self._task: asyncio.Task[None] | None = None
        self._hurried: set[str] = set()

    def _thresholds(self, model: str) -> HealthThresholds:
        return self._per_model.get(model, self._default)

    def on_alert(self, alert: Alert) -> None:
        """Call `alert` on every health transition of any model."""
        self._alerts.append(alert)

    def status(self, model: str) -> HealthStatus:
        return self._status[model]

    def statuses(self) -> dict[str, HealthStatus]:
        return dict(self._status)

    async def check(self, model: str) -> HealthStatus:
        """Probe one model now and update its status."""
        thresholds = self._thresholds(model)
        clock = self.clock
        started = clock.now()
        probe = self._probes[model]
        outcome = await Pipeline(Timeout(thresholds.probe_timeout)).execute(
            lambda _: probe(), None, clock=clock, model=model
        )
        ok = outcome.error is None
        latency = clock.now() - started
        results = self._results[model]
        results.append((ok, latency))
        self._consecutive[model] = 0 if ok else self._consecutive[model] + 1
        recover = thresholds.recover_after
        if ok and recover is not None and all(good for good, _ in list(results)[-recover:]):
            while len(results) > recover:
                results.popleft()
        status, reason = thresholds.judge(self._results[model], self._consecutive[model])
        previous = self._status[model]
        if status is not previous:
            self._status[model] = status
            change = HealthChanged(clock.now(), model, previous.value, status.value, reason)
            self.events.emit(change)
            for alert in self._alerts:
                try:
                    alert(change)
                except Exception:
                    log.exception("health alert callback failed")
        return status

    async def check_all(self) -> dict[str, HealthStatus]:
        """Probe every model concurrently once."""
        models = list(self._probes)
        results = await asyncio.gather(*(self.check(m) for m in models))
        return dict(zip(models, results, strict=True))

    def next_wait(self, model: str) -> float:
        """Seconds until `model`'s next probe, from its status now."""
        return self._next(model)[0]

    def hurry(self, model: str) -> None:
        """Move `model` to the fast pace now, not at its next turn (its circuit just opened): a
        healthy model's next probe may be the normal interval away, 30 s by default, longer
        than the outage it should find the end of. Noticed within `fast_interval` (the loop never
        sleeps longer), probed within another."""
        if model in self._probes:
            self._hurried.add(model)

    def _next(self, model: str) -> tuple[float, bool]:
        """Seconds until `model`'s next probe: the normal interval with jitter while it is healthy;
        while it is not (or `urgent`), anywhere from half the fast interval to all of it. A
        failing model gets no traffic but probes, so those must not fall in step with a fault
        that comes and goes: probes a steady second apart could land in every outage of a model
        flapping at that rhythm and keep it out of service through each time it was back."""
        urgent = self.urgent is not None and self.urgent(model)
        if urgent or self._status[model] is not HealthStatus.HEALTHY:
            return self._fast_wait(), True
        return self.interval * (1.0 + self.rng.uniform(-self.jitter, self.jitter)), False

    async def run(self) -> None:
        """Probe forever, each model on its own schedule (`next_wait`), the first probes spread
        over one interval so a large pool does not start in step."""
        now = self.clock.now()
        if self.first_after is not None:
            due = [
                (now + self.first_after * (1.0 + self.rng.uniform(-self.jitter, self.jitter)), m, False)
                for m in self._probes
            ]
        else:
            spread = self.interval if self.jitter else 0.0  # without jitter: all at once, in step
            due = [(now + self.rng.uniform(0, spread), m, False) for m in self._probes]
        # A heap, not a scan: 500 models probed every 30 s wake this loop 17 times a second.
        heapq.heapify(due)
        while due:
            now = self.clock.now()
            if due[0][0] > now:
                await self.clock.sleep(min(due[0][0] - now, self.fast_interval))
                now = self.clock.now()
                if self._hurried:
                    due = self._hurry_due(due, now)
                if due[0][0] > now:
                    continue  # woke only to look for hurried models: nothing is due yet
            ready: list[tuple[float, str, bool]] = []
            early: list[tuple[float, str, bool]] = []
            while due and due[0][0] <= now + self.batch:
                entry = heapq.heappop(due)
                (ready if entry[0] <= now or not entry[2] else early).append(entry)
            for entry in early:  # a fast-pace probe keeps its time
                heapq.heappush(due, entry)
            models = [model for _, model, _ in ready]
            paused = self.paused
            probed = models if paused is None else [m for m in models if not paused(m)]
            await asyncio.gather(*(self.check(m) for m in probed))
            after = self.clock.now()
            for model in models:
                wait, fast = self._next(model)
                heapq.heappush(due, (after + wait, model, fast))

    def _fast_wait(self) -> float:
        return self.fast_interval * self.rng.uniform(0.5, 1.0)

    def _hurry_due(self, due: list[tuple[float, str, bool]], now: float) -> list[tuple[float, str, bool]]:
        hurried, self._hurried = self._hurried, set()
        moved = [
            (min(t, now + self._fast_wait()), m, True) if m in hurried and not fast else (t, m, fast)
            for t, m, fast in due
        ]
        heapq.heapify(moved)
        return moved

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
