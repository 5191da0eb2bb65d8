import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from resilience_core import (
    TRANSITIONS,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitOpenError,
    CircuitState,
    CircuitStateChanged,
    IllegalTransitionError,
    Pipeline,
    Settleable,
)
from resilience_core.circuit import NO_PERMIT
from resilience_core.circuit.state import check_transition
from tests.conftest import Scripted, error, run_on


def breaker_with_events(**config):
    events = []
    return CircuitBreaker("m", CircuitBreakerConfig(**config), emit=events.append), events


def fail(breaker, now=0.0, duration=0.0):
    permit = breaker.try_acquire(now)
    assert permit != NO_PERMIT
    breaker.on_result(permit, failed=True, duration=duration, now=now)


def succeed(breaker, now=0.0, duration=0.0):
    permit = breaker.try_acquire(now)
    assert permit != NO_PERMIT
    breaker.on_result(permit, failed=False, duration=duration, now=now)


def test_opens_after_consecutive_failures_and_emits_the_transition():
    breaker, events = breaker_with_events(consecutive_failures=3)
    fail(breaker)
    fail(breaker)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, now=1.0)
    assert breaker.state is CircuitState.OPEN
    assert events == [CircuitStateChanged(1.0, "m", "closed", "open", "3 consecutive failures")]


def test_a_success_resets_the_consecutive_count():
    breaker, _ = breaker_with_events(consecutive_failures=3, failure_rate=1.0)
    for _ in range(10):
        fail(breaker)
        fail(breaker)
        succeed(breaker)
    assert breaker.state is CircuitState.CLOSED


def test_opens_on_failure_rate_once_minimum_calls_reached():
    breaker, events = breaker_with_events(
        consecutive_failures=100, failure_rate=0.5, minimum_calls=10, window_size=10
    )
    for i in range(9):
        (fail if i % 2 == 0 else succeed)(breaker)
    assert breaker.state is CircuitState.CLOSED  # 5 of 9, below minimum calls
    fail(breaker)
    assert breaker.state is CircuitState.OPEN
    assert "failure rate 60%" in events[-1].reason


def test_opens_on_slow_call_rate():
    breaker, events = breaker_with_events(
        slow_call_duration=1.0, slow_call_rate=0.5, minimum_calls=4, consecutive_failures=99
    )
    for duration in (2.0, 0.1, 2.0, 3.0):
        succeed(breaker, duration=duration)
    assert breaker.state is CircuitState.OPEN
    assert "slow-call rate" in events[-1].reason


def test_time_window_forgets_old_failures():
    breaker, _ = breaker_with_events(
        consecutive_failures=100, failure_rate=0.5, minimum_calls=4, window_seconds=10.0
    )
    for t in (0.0, 1.0, 2.0):
        fail(breaker, now=t)
    for t in (20.0, 21.0, 22.0, 23.0):
        succeed(breaker, now=t)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.window.snapshot(23.0).failures == 0


def test_open_rejects_then_half_opens_after_wait_and_limits_probes():
    breaker, events = breaker_with_events(consecutive_failures=1, wait_duration=5.0, half_open_probes=2)
    fail(breaker, now=0.0)
    assert breaker.try_acquire(4.9) == NO_PERMIT
    first = breaker.try_acquire(5.0)
    second = breaker.try_acquire(5.0)
    assert breaker.state is CircuitState.HALF_OPEN
    assert first != NO_PERMIT and second != NO_PERMIT
    assert breaker.try_acquire(5.0) == NO_PERMIT
    breaker.on_result(first, failed=False, duration=0.1, now=5.1)
    breaker.on_result(second, failed=False, duration=0.1, now=5.1)
    assert breaker.state is CircuitState.CLOSED
    assert [(e.from_state, e.to_state) for e in events] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_a_failed_probe_reopens():
    breaker, _ = breaker_with_events(consecutive_failures=1, wait_duration=1.0)
    fail(breaker, now=0.0)
    fail(breaker, now=1.0)
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened_at == 1.0


def test_late_result_from_an_earlier_state_is_ignored():
    breaker, _ = breaker_with_events(consecutive_failures=1, wait_duration=1.0, half_open_probes=1)
    slow = breaker.try_acquire(0.0)
    fail(breaker, now=0.0)
    probe = breaker.try_acquire(1.0)
    breaker.on_result(slow, failed=False, duration=5.0, now=1.5)  # admitted while closed
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.on_result(probe, failed=False, duration=0.1, now=1.6)
    assert breaker.state is CircuitState.CLOSED


def test_isolated_rejects_until_restored():
    breaker, _ = breaker_with_events()
    breaker.isolate(0.0, "by hand")
    assert breaker.try_acquire(1e9) == NO_PERMIT
    breaker.restore(2.0, "by hand")
    assert breaker.state is CircuitState.CLOSED


def test_illegal_transitions_are_refused():
    with pytest.raises(IllegalTransitionError):
        check_transition(CircuitState.ISOLATED, CircuitState.HALF_OPEN)
    with pytest.raises(IllegalTransitionError):
        check_transition(CircuitState.CLOSED, CircuitState.HALF_OPEN)


def test_policy_fails_fast_without_calling_when_open(clock):
    breaker = CircuitBreaker("m", CircuitBreakerConfig(consecutive_failures=2))
    upstream = Scripted(clock, [error(503)])
    pipeline = Pipeline(CircuitBreakerPolicy(breaker))
    for _ in range(2):
        run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert isinstance(outcome.error, CircuitOpenError)
    assert len(upstream.calls) == 2


def test_policy_does_not_count_client_errors_against_the_model(clock):
    breaker = CircuitBreaker("m", CircuitBreakerConfig(consecutive_failures=2))
    upstream = Scripted(clock, [error(400)])
    pipeline = Pipeline(CircuitBreakerPolicy(breaker))
    for _ in range(5):
        run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert breaker.state is CircuitState.CLOSED


class BreakerAgainstReference(RuleBasedStateMachine):
    """The breaker must agree with a direct reading of its rules at every step."""

    THRESHOLD = 3
    WAIT = 5.0
    PROBES = 2

    def __init__(self):
        super().__init__()
        self.events = []
        config = CircuitBreakerConfig(
            consecutive_failures=self.THRESHOLD,
            failure_rate=1.0,
            minimum_calls=1000,
            wait_duration=self.WAIT,
            half_open_probes=self.PROBES,
        )
        self.breaker = CircuitBreaker("m", config, emit=self.events.append)
        self.now = 0.0
        self.state = "closed"
        self.consecutive = 0
        self.opened_at = -math.inf
        self.probes_out: list[int] = []
        self.probe_successes = 0

    @rule(dt=st.floats(0.0, 4.0))
    def time_passes(self, dt):
        self.now += dt

    @rule(failed=st.booleans())
    def call_completes_at_once(self, failed):
        permit = self.breaker.try_acquire(self.now)
        expected_admit = self._admit()
        assert (permit != NO_PERMIT) == expected_admit
        if permit == NO_PERMIT:
            return
        self.breaker.on_result(permit, failed=failed, duration=0.0, now=self.now)
        self._result(failed)

    @precondition(lambda self: self.state != "isolated")
    @rule()
    def isolate(self):
        self.breaker.isolate(self.now, "test")
        self.state = "isolated"

    @precondition(lambda self: self.state != "closed")
    @rule()
    def restore(self):
        self.breaker.restore(self.now, "test")
        self.state = "closed"
        self.consecutive = 0

    def _admit(self):
        if self.state == "closed":
            return True
        if self.state == "open" and self.now >= self.opened_at + self.WAIT:
            self.state = "half_open"
            self.probe_successes = 0
        if self.state == "half_open":
            return self.probe_successes < self.PROBES
        return False

    def _result(self, failed):
        if self.state == "closed":
            self.consecutive = self.consecutive + 1 if failed else 0
            if self.consecutive >= self.THRESHOLD:
                self.state, self.opened_at = "open", self.now
        elif self.state == "half_open":
            if failed:
                self.state, self.opened_at = "open", self.now
            else:
                self.probe_successes += 1
                if self.probe_successes >= self.PROBES:
                    self.state, self.consecutive = "closed", 0

    @invariant()
    def same_state(self):
        assert self.breaker.state.value == self.state

    @invariant()
    def every_emitted_transition_is_legal_and_chained(self):
        previous = "closed"
        for event in self.events:
            assert event.from_state == previous
            assert CircuitState(event.to_state) in TRANSITIONS[CircuitState(event.from_state)]
            previous = event.to_state


BreakerAgainstReference.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerAgainstReference = BreakerAgainstReference.TestCase


class Stream(Settleable):
    """A value whose result is known later, like a stream that has started."""


def test_settleable_values_are_judged_when_they_settle_not_when_returned(clock):
    from resilience_core import MetricsCollector

    breaker = CircuitBreaker("m", CircuitBreakerConfig(consecutive_failures=2))
    metrics = MetricsCollector()
    streams = [Stream(), Stream()]
    upstream = Scripted(clock, streams)
    pipeline = Pipeline(CircuitBreakerPolicy(breaker), metrics.policy("m"))
    for _ in streams:
        outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
        assert outcome.ok
    assert breaker.state is CircuitState.CLOSED and metrics.snapshot("m").calls == 0
    for stream in streams:
        stream.settle(failed=True)  # both cut mid-answer
    assert breaker.state is CircuitState.OPEN
    assert metrics.snapshot("m").failures == 2
