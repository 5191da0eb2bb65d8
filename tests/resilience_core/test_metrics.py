import math

import pytest

from resilience_core import MetricsCollector, Pipeline
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
