"""While its guards are calm the attempt engine skips their admits and success hooks and logs
fast successes for them to count later (`resilience_core/_calm.py`): the guards must end up
where they would have without it. The reference is the same guards run as ordinary layers,
each admitting and settling every attempt itself."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience_core import (
    Bulkhead,
    BulkheadConfig,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitState,
    Guard,
    ModelCallError,
    Outcome,
    Pipeline,
    Retry,
    Timeout,
)
from resilience_core._calm import Calm
from resilience_core.availability import Holds, RateLimitHold, SlowFirstAnswer
from resilience_core.context import Context
from resilience_core.metrics import MetricsPolicy, ModelMetrics
from resilience_core.retry import RetryConfig, stop_after_attempt
from resilience_core.testing import FakeClock
from tests.conftest import PassThrough, Scripted, run_on


class Holder:
    def __init__(self) -> None:
        self.holds: list[tuple[str, float, str]] = []

    def hold(self, model: str, until: float, reason: str = "") -> None:
        self.holds.append((model, until, reason))


class Side:
    """One model's guards on a clock of its own: `fused` runs them in the engine (with a
    calm), otherwise each is a layer of its own (the reference)."""

    def __init__(self, fused: bool, window_seconds: float | None) -> None:
        self.clock = FakeClock()
        self.rng = random.Random(7)
        config = CircuitBreakerConfig(
            consecutive_failures=4,
            failure_rate=0.5,
            minimum_calls=6,
            window_size=10,
            window_seconds=window_seconds,
            slow_call_duration=0.8,
            slow_call_rate=0.6,
            wait_duration=2.0,
            half_open_probes=2,
        )
        self.breaker = CircuitBreaker("m", config)
        self.metrics = ModelMetrics("m", window=8)
        self.holder = Holder()
        self.holds = Holds(
            "m", self.holder, RateLimitHold(), SlowFirstAnswer(factor=2.0, floor=0.1, hold=1.5)
        )
        guards: list[Any] = [
            Retry(RetryConfig(stop=stop_after_attempt(2))),
            self.holds,
            CircuitBreakerPolicy(self.breaker),
            Timeout(5.0),
            MetricsPolicy(self.metrics),
        ]
        self.pipeline = Pipeline(*guards) if fused else Pipeline(*guards, PassThrough())
        self.calls = 0

    def call(self, script: list[tuple[float, str]], soft_cap: float) -> tuple[Any, ...]:
        answers = iter(script)

        async def upstream(request: Any) -> str:
            self.calls += 1
            duration, kind = next(answers, (0.1, "ok"))
            await self.clock.sleep(duration)
            if kind == "fail":
                raise ModelCallError("boom", status=500)
            if kind == "limited":
                raise ModelCallError("slow down", status=429, retry_after=0.5)
            return "answer"

        ctx = Context({}, upstream, clock=self.clock, rng=self.rng, model="m")
        ctx.soft_cap = soft_cap
        ctx.alternatives = 1 if soft_cap != math.inf else 0
        outcome: Outcome = run_on(self.clock, lambda: self.pipeline.run(ctx))
        return (outcome.ok, type(outcome.error).__name__, outcome.attempts, self.calls, self.clock.now())

    def figures(self) -> tuple[Any, ...]:
        breaker, metrics, holds = self.breaker, self.metrics, self.holds
        return (
            breaker.state,
            breaker.generation,
            breaker.failed_probes,
            breaker.snapshot(self.clock.now()),
            metrics.snapshot(),
            metrics.calls,
            metrics.latency_sum,
            metrics.first_srtt,
            metrics.first_rttvar,
            (holds.streak, holds.on_trial, holds.trial_answers, holds.slow_until, holds.slow_again),
            list(self.holder.holds),
        )


answer = st.tuples(
    st.sampled_from([0.05, 0.1, 0.3, 0.9, 1.2]),
    st.sampled_from(["ok", "ok", "ok", "fail", "fail", "limited"]),
)
step = st.one_of(
    st.tuples(st.just("call"), st.lists(answer, min_size=1, max_size=2), st.sampled_from([math.inf, 0.5])),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 2.5])),
    st.tuples(st.just("read")),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(step, min_size=30, max_size=120), window_seconds=st.sampled_from([None, 3.0]))
def test_calm_guards_end_where_guards_run_one_by_one_end(steps, window_seconds):
    fused, layered = Side(True, window_seconds), Side(False, window_seconds)
    for each in steps:
        if each[0] == "call":
            assert fused.call(each[1], each[2]) == layered.call(each[1], each[2])
        elif each[0] == "wait":
            fused.clock.advance(each[1])
            layered.clock.advance(each[1])
        else:
            assert fused.figures() == layered.figures()
    assert fused.figures() == layered.figures()
    assert fused.breaker.calm is not None and layered.breaker.calm is None  # there was a calm to test


def test_calm_successes_are_logged_not_heard_and_counted_when_read(clock):
    side = Side(True, None)
    for _ in range(5):
        side.call([(0.1, "ok")], math.inf)
    calm = side.breaker.calm
    assert len(calm.log) == 15  # three figures a success, no hook ran
    assert side.breaker.passed == [] and side.metrics.pending == []
    assert side.metrics.calls == 5  # a read drains the log first
    assert calm.log == [] and side.breaker.snapshot(side.clock.now()).calls == 5


def test_a_slow_success_leaves_the_calm_path_and_the_breaker_counts_it_slow():
    side = Side(True, None)
    side.call([(0.1, "ok")], math.inf)
    side.call([(0.9, "ok")], math.inf)  # slower than slow_call_duration (0.8)
    calm = side.breaker.calm
    assert len(calm.log) == 0  # drained when the breaker heard the slow one, the fast one first
    assert side.breaker.snapshot(side.clock.now()).slow == 1
    assert side.metrics.calls == 2


def test_a_state_change_while_an_attempt_runs_sends_its_success_through_the_hooks():
    side = Side(True, None)
    calm = side.breaker.calm
    epoch = calm.epoch
    side.breaker.isolate(side.clock.now(), "by hand")
    assert calm.epoch > epoch and not calm.quiet
    side.breaker.restore(side.clock.now(), "by hand")
    assert calm.quiet and calm.permit == side.breaker.generation


class Counting(Guard):
    """A guard that cannot take part in a calm: it counts the successes it hears."""

    def __init__(self) -> None:
        self.heard = 0

    def admit(self, ctx: Context) -> Outcome | None:
        return None

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        self.heard += outcome.ok


class LoudBreaker(CircuitBreakerPolicy):
    def admit(self, ctx: Context) -> Outcome | None:
        return super().admit(ctx)


class Forgetful(Counting):
    """Joins calms but never says it did (`in_calm`): it could end up in two."""

    def join_calm(self, calm: Calm) -> None:
        return None

    def calm_into(self, calm: Calm) -> bool:
        return True


@pytest.mark.parametrize(
    "case",
    ["cannot join", "overrides admit", "joins without in_calm"],
)
def test_a_guard_that_cannot_join_keeps_every_hook_called(clock, case):
    breaker = CircuitBreaker("x")
    loud = case == "overrides admit"
    counting = Forgetful() if case == "joins without in_calm" else Counting()
    policy = LoudBreaker(breaker) if loud else CircuitBreakerPolicy(breaker)
    pipeline = Pipeline(policy, *(() if loud else (counting,)))
    run_on(clock, lambda: pipeline.execute(Scripted(clock, [(0.1, "answer")]), {}, clock=clock))
    assert breaker.calm is None  # nobody joined: the pipeline has no calm
    assert breaker.passed == [0.1]  # the breaker's own success hook ran
    assert counting.heard == (0 if loud else 1)


def test_the_log_is_counted_every_32_successes_without_a_read(clock):
    side = Side(True, None)
    calm = side.breaker.calm
    for _ in range(32):
        side.call([(0.1, "ok")], math.inf)
    assert calm.log == [] and side.metrics.pending == [] and side.metrics._calls == 32
    side.call([(0.1, "ok")], math.inf)
    assert len(calm.log) == 3


def test_a_success_whose_breaker_moved_on_while_it_ran_is_not_counted(clock):
    """Tripped and restored by hand during the call: calm again when it ends, but its permit is
    from before, so the breaker ignores it, as its own hook would have."""
    breaker = CircuitBreaker("m")
    pipeline = Pipeline(CircuitBreakerPolicy(breaker), MetricsPolicy(ModelMetrics("m")))

    async def upstream(request: Any) -> str:
        await clock.sleep(0.2)
        breaker.isolate(clock.now(), "by hand")
        breaker.restore(clock.now(), "by hand")
        return "answer"

    outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert outcome.ok and breaker.calm.quiet
    assert breaker.snapshot(clock.now()).calls == 0


def test_a_breaker_outside_the_engine_keeps_its_permit_and_counts_every_result(clock):
    """A bulkhead between the breaker and the attempt: the breaker runs as a layer of its own,
    and the calm inside (the metrics alone) has no permit to give."""
    breaker = CircuitBreaker("m", CircuitBreakerConfig(consecutive_failures=2))
    metrics = ModelMetrics("m")
    pipeline = Pipeline(
        CircuitBreakerPolicy(breaker), Bulkhead(BulkheadConfig(max_concurrent=4)), MetricsPolicy(metrics)
    )
    upstream = Scripted(clock, [ConnectionError("refused")])
    for _ in range(3):
        run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert metrics.calm is not None and metrics.calm.quiet
    assert breaker.state is CircuitState.OPEN and len(upstream.calls) == 2


def test_guards_take_part_in_one_calm_at_most(clock):
    """A second pipeline around the same breaker and metrics gets no calm of its own: two logs
    could not tell which success came first."""
    breaker, metrics = CircuitBreaker("m"), ModelMetrics("m")
    first = Pipeline(CircuitBreakerPolicy(breaker), MetricsPolicy(metrics))
    second = Pipeline(CircuitBreakerPolicy(breaker), MetricsPolicy(metrics))
    upstream = Scripted(clock, [(0.1, "answer"), (0.3, "answer"), (0.2, "answer")])
    for pipeline in (first, second, first):
        run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))  # noqa: B023
    assert breaker.calm is metrics.calm is not None
    assert metrics.pending == [0.1, 0.4, 0.4]  # the second's, the first's counted before it
    assert metrics.calm.log == pytest.approx([0.4, 0.6, 0.6])
    expected = 0.1
    for latency in (0.3, 0.2):
        expected += 0.2 * (latency - expected)
    assert metrics.ewma_latency == pytest.approx(expected)


def test_holds_joined_after_a_rate_limit_start_not_calm(clock):
    holds = Holds("m", Holder(), RateLimitHold(), None)
    layered = Pipeline(holds, PassThrough())
    run_on(
        clock, lambda: layered.execute(Scripted(clock, [ModelCallError("slow", status=429)]), {}, clock=clock)
    )
    assert holds.streak == 1
    fused = Pipeline(holds, MetricsPolicy(ModelMetrics("m")))
    assert holds.calm is not None and not holds.calm.quiet
    run_on(clock, lambda: fused.execute(Scripted(clock, ["answer"]), {}, clock=clock))
    assert holds.streak == 0 and holds.calm.quiet  # the success was heard: the streak is over


def test_a_success_heard_by_a_guard_drains_the_calm_logs_it_shares_first(clock):
    """One model's breaker and metrics in two pipelines: A has the calm, B (built second around
    the same guards) none. B's success is heard through the hooks: A's logged ones count first."""
    breaker = CircuitBreaker("m", CircuitBreakerConfig(window_seconds=10.0))
    metrics = ModelMetrics("m")
    holds = [Holds("m", Holder(), RateLimitHold(), None) for _ in range(2)]
    a = Pipeline(holds[0], CircuitBreakerPolicy(breaker), MetricsPolicy(metrics))
    b = Pipeline(holds[1], MetricsPolicy(metrics), CircuitBreakerPolicy(breaker))  # the breaker hears first
    results = iter([ModelCallError("slow down", status=429)])

    async def upstream(request: Any) -> str:
        await clock.sleep(0.25)
        error = next(results, None)
        if error is not None:
            raise error
        return "answer"

    run_on(clock, lambda: b.execute(upstream, {}, clock=clock))  # B's holds: a streak now
    calm_a = breaker.calm
    assert calm_a is not None and calm_a.quiet
    for _ in range(3):
        run_on(clock, lambda: a.execute(upstream, {}, clock=clock))
    assert len(calm_a.log) == 9
    run_on(clock, lambda: b.execute(upstream, {}, clock=clock))
    assert calm_a.log == []
    assert breaker.passed == [1.25]  # A's three (ended 0.5, 0.75, 1.0) are in the window already
    assert metrics.pending == [1.0, 1.25, 1.25]  # and in the metrics' figures
    assert breaker.snapshot(clock.now()).calls == 5 and metrics.calls == 5


def test_a_result_recorded_directly_comes_after_the_logged_successes():
    side = Side(True, None)
    for _ in range(2):
        side.call([(0.1, "ok")], math.inf)
    calm = side.metrics.calm
    side.metrics.record(0.4, False)  # e.g. a stream's success, settled when it ended
    assert calm.log == [] and side.metrics.pending == [0.0, 0.4, -1.0]
    assert side.metrics.ewma_latency == pytest.approx(0.1 + 0.2 * (0.4 - 0.1))
