"""Per-model rolling metrics, recorded on the hot path in O(1) and summarised on read."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import reduce
from operator import add, sub
from typing import TYPE_CHECKING

from ._calm import Calm, Sink
from .context import Context
from .outcome import Outcome
from .policy import Guard

if TYPE_CHECKING:  # prometheus_client is imported when metrics are exported, not with the core
    from prometheus_client.core import Metric
    from prometheus_client.registry import CollectorRegistry

DEFAULT_WINDOW = 200
DEFAULT_EWMA_ALPHA = 0.2
LATENCY_FLOOR = 0.001
"""Scores divide by latency; below a millisecond the difference is noise."""
FOLD_EVERY = 32
"""Successes kept as raw figures before they are folded into the metrics (any read folds them
first, so nobody sees them stale)."""
PENDING_MOST = 3 * FOLD_EVERY
"""Three figures a success."""


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """One model's figures at a moment. Latencies in seconds, rates in [0, 1]."""

    model: str
    calls: int
    successes: int
    failures: int
    p50: float
    p95: float
    p99: float
    error_rate: float
    availability: float
    ewma_latency: float
    ewma_error: float
    score: float


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class ModelMetrics:
    """Rolling window of the last `window` results of one model, plus EWMAs for routing.

    A success, most attempts, is kept as three raw figures in `pending` and folded into the rest
    `FOLD_EVERY` at a time, or sooner when anything reads a figure (every reader folds first):
    the same sums in the same order, but the fold runs with its code and data in the cache,
    where one update per request ran cold each time (in process, callgrind counted the
    metrics at ~5 k of the policies' ~13 k instructions per gateway request)."""

    __slots__ = (
        "_calls",
        "_ewma_error",
        "_ewma_latency",
        "_failed_calls",
        "_failures",
        "_first_rttvar",
        "_first_srtt",
        "_latencies",
        "_latency_sum",
        "alpha",
        "calm",
        "model",
        "pending",
        "window",
    )

    def __init__(self, model: str, *, window: int = DEFAULT_WINDOW, alpha: float = DEFAULT_EWMA_ALPHA):
        self.model = model
        self.window = window
        self.alpha = alpha
        self._calls = 0
        self._failures = 0
        self._latency_sum = 0.0
        self._ewma_latency: float | None = None
        self._ewma_error = 0.0
        self._first_srtt: float | None = None
        self._first_rttvar = 0.0
        self._latencies: deque[float] = deque(maxlen=window)
        self._failed_calls: deque[int] = deque()
        """Call numbers of the failures among the last `window` calls: a success, the common
        case, then costs one comparison instead of a second per-call deque."""
        self.pending: list[float] = []
        """Successes not folded yet: when each started, ended and first answered (-1: not),
        in turn (`record` puts 0 as the start), as a calm logs them (`_calm`)."""
        self.calm: Calm | None = None
        """The pipeline's calm these metrics take part in (`MetricsPolicy.join_calm`): drained
        before any figure is read or a result kept."""

    @property
    def calls(self) -> int:
        self.fold()
        return self._calls

    @property
    def failures(self) -> int:
        self.fold()
        return self._failures

    @property
    def first_rttvar(self) -> float:
        self.fold()
        return self._first_rttvar

    @property
    def latency_sum(self) -> float:
        """Seconds of every attempt since start: a summary's `_sum`, beside `calls` as `_count`."""
        self.fold()
        return self._latency_sum

    @property
    def ewma_latency(self) -> float | None:
        self.fold()
        return self._ewma_latency

    @property
    def ewma_error(self) -> float:
        self.fold()
        return self._ewma_error

    @property
    def first_srtt(self) -> float | None:
        """Smoothed time to the first answer (a stream's first content), as TCP smooths RTT."""
        self.fold()
        return self._first_srtt

    def record(self, latency: float, failed: bool, first: float = -1.0) -> None:
        """One attempt: its latency, whether it failed, and (>= 0) its time to first answer."""
        if not failed:
            if self.calm is not None:
                self.calm.drain()
            pending = self.pending
            pending += (0.0, latency, first)
            if len(pending) >= PENDING_MOST:
                self.fold()
            return
        self.fold()
        if first >= 0:
            self._smooth_first(first)
        calls = self._calls = self._calls + 1
        self._failures += 1
        failures = self._failed_calls
        failures.append(calls)
        if failures[0] <= calls - self.window:
            failures.popleft()
        self._latencies.append(latency)
        self._latency_sum += latency
        ewma = self._ewma_latency
        alpha = self.alpha
        self._ewma_latency = latency if ewma is None else ewma + alpha * (latency - ewma)
        self._ewma_error += alpha * (1.0 - self._ewma_error)

    def fold(self) -> None:
        """Fold the pending successes in, oldest first: the updates `record` would have made.

        What needs no order (the latencies, the call count, the window's failures, the sum,
        which `reduce` adds one at a time as `record` would) is done a batch at a time in C;
        only the smoothing, which depends on each figure before, stays a Python loop: it was
        ~80 of the policies' ~570 opcodes per gateway request as one loop for everything."""
        if self.calm is not None:
            self.calm.drain()
        pending = self.pending
        if not pending:
            return
        starts = pending[0::3]
        latencies = list(map(sub, pending[1::3], starts))
        calls = self._calls = self._calls + len(latencies)
        failures, oldest = self._failed_calls, calls - self.window
        while failures and failures[0] <= oldest:  # one at most per call, as `record` pops them
            failures.popleft()
        self._latencies.extend(latencies)
        self._latency_sum = reduce(add, latencies, self._latency_sum)
        alpha, ewma = self.alpha, self._ewma_latency
        srtt, rttvar = self._first_srtt, self._first_rttvar
        for latency, first, started in zip(latencies, pending[2::3], starts, strict=True):
            ewma = latency if ewma is None else ewma + alpha * (latency - ewma)
            if first >= 0:  # `_smooth_first`, inline: nearly every success has a first answer
                first -= started
                if srtt is None:
                    srtt, rttvar = first, first / 2
                else:
                    rttvar += 0.25 * (abs(srtt - first) - rttvar)
                    srtt += 0.125 * (first - srtt)
        error = self._ewma_error
        if error:  # nothing to decay while no failure was seen
            for _ in latencies:
                error -= alpha * error
            self._ewma_error = error
        pending.clear()  # in place: the metrics' policy keeps this list
        self._ewma_latency = ewma
        self._first_srtt, self._first_rttvar = srtt, rttvar

    def take_log(self, log: list[float]) -> None:
        """A calm's logged successes (`_calm.Sink`), in `pending`'s own form."""
        self.pending += log
        self.fold()

    def _smooth_first(self, first: float) -> None:
        """RFC 6298's smoothing of the time to a first answer."""
        srtt = self._first_srtt
        if srtt is None:
            self._first_srtt, self._first_rttvar = first, first / 2
        else:
            self._first_rttvar += 0.25 * (abs(srtt - first) - self._first_rttvar)
            self._first_srtt = srtt + 0.125 * (first - srtt)

    def probed(self, first_answer: float) -> None:
        """A health probe's time to answer: keeps an idle model's speed known (for the soft cap)
        without counting as a call."""
        self.fold()
        self._smooth_first(first_answer)

    def first_answer_bound(self) -> float | None:
        """How long a first answer from this model may take before it is unusually slow:
        smoothed time plus four deviations (RFC 6298's timeout), None before any answer."""
        self.fold()
        if self._first_srtt is None:
            return None
        return self._first_srtt + 4 * self._first_rttvar

    def score(self) -> float:
        """Higher is better: success share squared over smoothed latency."""
        self.fold()
        latency = max(self._ewma_latency or LATENCY_FLOOR, LATENCY_FLOOR)
        return (1.0 - self._ewma_error) ** 2 / latency

    def snapshot(self) -> MetricsSnapshot:
        self.fold()
        ordered = sorted(self._latencies)
        in_window = len(self._latencies)
        error_rate = len(self._failed_calls) / in_window if in_window else 0.0
        return MetricsSnapshot(
            model=self.model,
            calls=self._calls,
            successes=self._calls - self._failures,
            failures=self._failures,
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            error_rate=error_rate,
            availability=1.0 - error_rate if in_window else 1.0,
            ewma_latency=self._ewma_latency if self._ewma_latency is not None else math.nan,
            ewma_error=self._ewma_error,
            score=self.score(),
        )


class MetricsCollector:
    """All models' metrics; also a Prometheus collector rendered only when scraped.

    Usage::

        metrics = MetricsCollector()
        pipeline = Pipeline(Retry(), metrics.policy("gpt-a"))
        print(metrics.exposition().decode())
    """

    def __init__(
        self,
        *,
        window: int = DEFAULT_WINDOW,
        alpha: float = DEFAULT_EWMA_ALPHA,
        state_of: Callable[[str], str] | None = None,
    ) -> None:
        self.window = window
        self.alpha = alpha
        self.state_of = state_of
        """Reads a model's breaker state for the exposition (set by the router)."""
        self._models: dict[str, ModelMetrics] = {}

    def model(self, name: str) -> ModelMetrics:
        found = self._models.get(name)
        if found is None:
            found = self._models[name] = ModelMetrics(name, window=self.window, alpha=self.alpha)
        return found

    def models(self) -> list[str]:
        return list(self._models)

    def snapshot(self, name: str) -> MetricsSnapshot:
        return self.model(name).snapshot()

    def policy(
        self, name: str, *, counts_as_failure: Callable[[Outcome], bool] | None = None
    ) -> MetricsPolicy:
        return MetricsPolicy(self.model(name), counts_as_failure)

    def collect(self) -> Iterator[Metric]:
        """Prometheus families named by its conventions: counters `_total`, units in the name,
        ratios `_ratio`, the latency a summary (quantiles over the last `window` attempts, as
        client libraries' sliding summaries; `_count` and `_sum` since start)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

        calls = CounterMetricFamily("model_calls", "Upstream attempts, by result", labels=["model", "result"])
        latency = Metric("model_latency_seconds", "Upstream attempt latency", "summary")
        error_ratio = GaugeMetricFamily(
            "model_error_ratio", "Share of failed attempts in the rolling window", labels=["model"]
        )
        availability = GaugeMetricFamily(
            "model_availability_ratio", "Share of successful attempts in the rolling window", labels=["model"]
        )
        score = GaugeMetricFamily("model_routing_score", "Routing score (higher is better)", labels=["model"])
        state = GaugeMetricFamily(
            "model_circuit_state", "1 for the breaker's current state", labels=["model", "state"]
        )
        for name, metrics in self._models.items():
            snap = metrics.snapshot()
            calls.add_metric([name, "success"], snap.successes)
            calls.add_metric([name, "failure"], snap.failures)
            for label, value in (("0.5", snap.p50), ("0.95", snap.p95), ("0.99", snap.p99)):
                latency.add_sample("model_latency_seconds", {"model": name, "quantile": label}, value)
            latency.add_sample("model_latency_seconds_count", {"model": name}, snap.calls)
            latency.add_sample("model_latency_seconds_sum", {"model": name}, metrics.latency_sum)
            error_ratio.add_metric([name], snap.error_rate)
            availability.add_metric([name], snap.availability)
            score.add_metric([name], snap.score)
            if self.state_of is not None:
                state.add_metric([name, self.state_of(name)], 1.0)
        yield from (calls, latency, error_ratio, availability, score, state)

    def registry(self) -> CollectorRegistry:
        """A fresh registry holding only this collector."""
        from prometheus_client.registry import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Adapter(self))  # a Collector by its methods (collect)
        return registry

    def exposition(self) -> bytes:
        """Prometheus text format of every model's current figures."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry())


class _Adapter:
    """What a registry calls (`collect`), without subclassing prometheus_client's `Collector`,
    which would import it with the core."""

    def __init__(self, source: MetricsCollector) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        return self.source.collect()


class MetricsPolicy(Guard):
    """Records each attempt that reached the upstream, timed by the invoker's stamps."""

    __slots__ = ("counts_as_failure", "metrics", "pending")

    def __init__(
        self, metrics: ModelMetrics, counts_as_failure: Callable[[Outcome], bool] | None = None
    ) -> None:
        self.metrics = metrics
        self.counts_as_failure = counts_as_failure
        self.pending = metrics.pending

    def succeeded(self, ctx: Context, outcome: Outcome, reached: bool = True) -> None:
        """A success's three figures, kept for the metrics' next fold: `record`'s success
        path, inline, one frame less (when its pipeline's calm logs it: two less)."""
        metrics = self.metrics
        if metrics.calm is not None:  # successes logged before this one are counted first
            metrics.calm.drain()
        pending = self.pending
        pending += (ctx.attempt_started, ctx.attempt_ended, ctx.first_byte)
        if len(pending) >= PENDING_MOST:
            self.metrics.fold()

    def join_calm(self, calm: Calm) -> Sink:
        self.metrics.calm = calm
        return self.metrics.take_log

    def in_calm(self) -> bool:
        return self.metrics.calm is not None

    def calm_into(self, calm: Calm) -> bool:
        """Always: it admits everyone, and a success is only kept for the next fold."""
        return True

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        if not reached:
            return  # refused before reaching the upstream: not an attempt
        started = ctx.attempt_started
        if outcome.error is None:
            first = ctx.first_byte - started if ctx.first_byte >= 0 else -1.0
            self.metrics.record(ctx.attempt_ended - started, False, first)
        else:
            failed = True if self.counts_as_failure is None else self.counts_as_failure(outcome)
            self.metrics.record(ctx.attempt_ended - started, failed)

    def abandon(self, ctx: Context) -> None:
        """A hedge that lost the race was slow: its time so far counts (as a lower bound)."""
        if ctx.lost_race:
            elapsed = ctx.attempt_ended - ctx.attempt_started
            self.metrics.record(elapsed, False, elapsed)

    def describe(self) -> str:
        return f"Metrics({self.metrics.model})"
