import math
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience_core import MetricsCollector, Pipeline
from resilience_core.context import Context
from resilience_core.metrics import PENDING_MOST, MetricsPolicy, ModelMetrics
from resilience_core.outcome import Outcome
from tests.conftest import Scripted, error, run_on


def test_rolling_percentiles_error_rate_and_availability(clock):
    metrics = MetricsCollector(window=100)
    model = metrics.model("m")
    for i in range(1, 101):
        model.record(i / 1000, failed=i % 10 == 0)
    snap = metrics.snapshot("m")
    assert (snap.calls, snap.successes, snap.failures) == (100, 90, 10)
    assert (snap.p50, snap.p95, snap.p99) == (0.05, 0.095, 0.099)
    assert snap.error_rate == pytest.approx(0.1)
    assert snap.availability == pytest.approx(0.9)


def test_window_rolls_old_results_out():
    metrics = MetricsCollector(window=10)
    model = metrics.model("m")
    for _ in range(10):
        model.record(1.0, failed=True)
    for _ in range(10):
        model.record(0.01, failed=False)
    snap = model.snapshot()
    assert snap.error_rate == 0.0
    assert snap.p99 == 0.01
    assert snap.calls == 20  # lifetime count keeps everything


def test_ewma_score_prefers_fast_and_reliable_models():
    metrics = MetricsCollector()
    for _ in range(50):
        metrics.model("fast").record(0.1, failed=False)
        metrics.model("slow").record(1.0, failed=False)
        metrics.model("flaky").record(0.1, failed=True)
    scores = {m: metrics.snapshot(m).score for m in ("fast", "slow", "flaky")}
    assert scores["fast"] > scores["slow"] > scores["flaky"]


def test_policy_records_each_attempt_with_its_latency(clock):
    metrics = MetricsCollector()
    upstream = Scripted(clock, [(0.2, "ok"), (0.4, error(503))])
    pipeline = Pipeline(metrics.policy("m"))
    run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    snap = metrics.snapshot("m")
    assert (snap.calls, snap.failures) == (2, 1)
    assert snap.p99 == pytest.approx(0.4)


def test_prometheus_exposition_has_every_model_and_state():
    metrics = MetricsCollector(state_of=lambda name: "open" if name == "b" else "closed")
    metrics.model("a").record(0.1, failed=False)
    metrics.model("b").record(0.3, failed=True)
    text = metrics.exposition().decode()
    assert 'model_calls_total{model="a",result="success"} 1.0' in text
    assert 'model_calls_total{model="b",result="failure"} 1.0' in text
    assert 'model_latency_seconds{model="b",quantile="0.99"} 0.3' in text
    assert 'model_circuit_state{model="b",state="open"} 1.0' in text


def test_empty_model_reports_nan_latency_and_full_availability():
    snap = MetricsCollector().snapshot("fresh")
    assert math.isnan(snap.p50) and snap.availability == 1.0


class EagerMetrics:
    """The figures as one update per attempt would leave them (the metrics before successes
    were kept raw and folded in batches): what folding must reproduce exactly."""

    def __init__(self, window, alpha):
        self.window, self.alpha = window, alpha
        self.calls = self.failures = 0
        self.latencies: deque[float] = deque(maxlen=window)
        self.failed: deque[int] = deque()
        self.latency_sum, self.ewma_latency, self.ewma_error = 0.0, None, 0.0
        self.first_srtt, self.first_rttvar = None, 0.0

    def smooth(self, first):
        if self.first_srtt is None:
            self.first_srtt, self.first_rttvar = first, first / 2
        else:
            self.first_rttvar += 0.25 * (abs(self.first_srtt - first) - self.first_rttvar)
            self.first_srtt += 0.125 * (first - self.first_srtt)

    def record(self, latency, failed, first):
        if first >= 0:
            self.smooth(first)
        self.calls += 1
        if failed:
            self.failures += 1
            self.failed.append(self.calls)
        if self.failed and self.failed[0] <= self.calls - self.window:
            self.failed.popleft()
        self.latencies.append(latency)
        self.latency_sum += latency
        ewma = self.ewma_latency
        self.ewma_latency = latency if ewma is None else ewma + self.alpha * (latency - ewma)
        if failed or self.ewma_error:
            self.ewma_error += self.alpha * (failed - self.ewma_error)


READS = ("calls", "failures", "ewma_latency", "ewma_error", "first_srtt", "latency_sum", "first_answer_bound")
"""Every figure a reader outside the metrics takes (the router reads the EWMAs and the bound)."""


def eager_figure(eager: EagerMetrics, name: str) -> object:
    if name == "first_answer_bound":
        return None if eager.first_srtt is None else eager.first_srtt + 4 * eager.first_rttvar
    return getattr(eager, name)


STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("attempt"),
            st.floats(0.0, 5.0),
            st.booleans(),
            st.one_of(st.just(-1.0), st.floats(0.0, 5.0)),
        ),
        st.tuples(st.just("probe"), st.floats(0.0, 5.0)),
        st.sampled_from([("read", name) for name in READS]),
    ),
    max_size=300,
)


@given(steps=STEPS, window=st.integers(1, 50))
@settings(max_examples=150, deadline=None)
def test_successes_folded_in_batches_give_the_figures_of_one_update_each(steps, window):
    """Successes wait in `pending` and are folded FOLD_EVERY at a time or when read; failures,
    probes and every reader fold first, so the order of the updates, and every figure, is
    what updating once per attempt gives. Attempts come both through `record` and through
    the policy's success path, as the engine reports them."""
    metrics = ModelMetrics("m", window=window)
    policy = MetricsPolicy(metrics)
    eager = EagerMetrics(window, metrics.alpha)
    for i, step in enumerate(steps):
        if step[0] == "attempt":
            _, latency, failed, first = step
            if not failed and i % 2:
                ctx = Context(None, None)
                ctx.attempt_started, ctx.attempt_ended = 10.0, 10.0 + latency
                ctx.first_byte = 10.0 + first if first >= 0 else -1.0
                policy.succeeded(ctx, Outcome(value="ok"))
                first = ctx.first_byte - 10.0 if first >= 0 else -1.0  # the same float the policy computed
                latency = ctx.attempt_ended - 10.0
            else:
                metrics.record(latency, failed, first)
            eager.record(latency, failed, first)
        elif step[0] == "probe":
            metrics.probed(step[1])
            eager.smooth(step[1])
        else:
            figure = getattr(metrics, step[1])
            assert (figure() if callable(figure) else figure) == eager_figure(eager, step[1]), step[1]
        assert len(metrics.pending) < PENDING_MOST  # never more than a batch waits
    snap = metrics.snapshot()
    assert (snap.calls, snap.failures) == (eager.calls, eager.failures)
    assert snap.error_rate == (len(eager.failed) / len(eager.latencies) if eager.latencies else 0.0)
    assert list(metrics._latencies) == list(eager.latencies)
    for name in READS:
        figure = getattr(metrics, name)
        assert (figure() if callable(figure) else figure) == eager_figure(eager, name), name
