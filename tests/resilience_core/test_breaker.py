import copy
import math
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

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
from resilience_core.circuit.breaker import DEFAULT_WINDOW_SIZE, PASSED_MOST
from resilience_core.circuit.state import check_transition
from resilience_core.circuit.window import TimeWindow
from resilience_core.context import Context
from resilience_core.outcome import Outcome
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


def test_a_success_never_trips_the_circuit_the_next_failure_does_on_the_rate_it_holds():
    breaker, events = breaker_with_events(
        consecutive_failures=100, failure_rate=0.5, minimum_calls=4, window_size=8
    )
    fail(breaker)
    fail(breaker)
    succeed(breaker)
    succeed(breaker, now=1.0)
    # 2 failures in 4 calls is 50 %, but the call that got there answered: a model coming back
    # is not shut out for the failures of a fault that ended
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, now=2.0)
    assert breaker.state is CircuitState.OPEN
    assert events[-1].reason == "failure rate 60% over 5 calls"


def test_opens_on_slow_call_rate():
    breaker, events = breaker_with_events(
        slow_call_duration=1.0, slow_call_rate=0.5, minimum_calls=4, consecutive_failures=99
    )
    for duration in (2.0, 0.1, 2.0, 3.0):
        succeed(breaker, duration=duration)
    assert breaker.state is CircuitState.OPEN
    assert "slow-call rate" in events[-1].reason


def test_a_fast_success_never_trips_on_the_slow_rate_the_next_slow_call_does():
    breaker, events = breaker_with_events(
        slow_call_duration=1.0, slow_call_rate=0.3, minimum_calls=3, consecutive_failures=99
    )
    succeed(breaker, duration=2.0)
    succeed(breaker)
    succeed(breaker)
    assert breaker.state is CircuitState.CLOSED  # 1 slow call in 3 (33 %), but the third was fast
    succeed(breaker, duration=2.0)
    assert breaker.state is CircuitState.OPEN  # 2 slow calls in 4
    assert "slow-call rate 50%" in events[-1].reason


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


@settings(max_examples=300, deadline=None)
@given(
    buckets=st.sampled_from([1, 2, 4, 8]),
    steps=st.lists(
        st.tuples(st.integers(0, 24).map(lambda sixteenths: sixteenths / 16), st.booleans(), st.booleans()),
        max_size=80,
    ),
    reads=st.lists(st.booleans(), min_size=80, max_size=80),
)
def test_time_window_holds_exactly_the_calls_of_its_live_slices(buckets, steps, reads):
    # A call belongs to slice floor(t / width); the window holds the newest `buckets` slices
    # up to now. Dyadic times and widths keep every slice boundary exact.
    # Fast successes are noted and handed over in batches (`passed`), as the breaker does:
    # before the next other call and before a read, across slice boundaries.
    window = TimeWindow(8.0, buckets)
    width = 8.0 / buckets
    now = 0.0
    seen: list[tuple[float, bool, bool]] = []
    noted: list[float] = []
    for (step, failed, slow), read in zip(steps, reads, strict=False):
        now += step
        if read:
            window.passed(noted)
            noted.clear()
            alive = [c for c in seen if math.floor(c[0] / width) > math.floor(now / width) - buckets]
            snap = window.snapshot(now)
            assert (snap.calls, snap.failures, snap.slow) == (
                len(alive),
                sum(f for _, f, _ in alive),
                sum(s for *_, s in alive),
            )
        if failed or slow:
            window.passed(noted)
            noted.clear()
            window.record(failed, slow, now)
        else:
            noted.append(now)
        seen.append((now, failed, slow))


def test_after_old_successes_expire_the_next_failure_trips_on_the_rate_the_time_window_holds():
    breaker, _ = breaker_with_events(
        consecutive_failures=99, failure_rate=0.5, minimum_calls=2, window_seconds=10.0
    )
    succeed(breaker, now=0.0)
    succeed(breaker, now=0.0)
    fail(breaker, now=9.0)
    assert breaker.state is CircuitState.CLOSED  # 1 failure in 3 calls
    succeed(breaker, now=10.5)  # the two successes at 0 s have left the window: 1 in 2, but it answered
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, now=11.0)
    assert breaker.state is CircuitState.OPEN  # 2 failures in 3 calls


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


def test_each_failed_probe_doubles_the_wait_up_to_its_cap_and_closing_forgets_it():
    breaker, _ = breaker_with_events(
        consecutive_failures=1, wait_duration=1.0, half_open_probes=1, wait_backoff=2.0, max_wait_duration=5.0
    )
    fail(breaker, now=0.0)  # trips: the first wait is the plain one
    opened, probes = 0.0, []
    for wait in (1.0, 2.0, 4.0, 5.0, 5.0):
        assert breaker.try_acquire(opened + wait - 0.01) == NO_PERMIT
        fail(breaker, now=opened + wait)  # the probe fails: open again, for longer
        opened += wait
        probes.append(opened)
    assert probes == [1.0, 3.0, 7.0, 12.0, 17.0]
    succeed(breaker, now=opened + 5.0)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, now=30.0)  # a new outage starts from the plain wait again
    assert breaker.try_acquire(31.0) != NO_PERMIT


def test_the_cap_never_shortens_the_plain_wait():
    breaker, _ = breaker_with_events(
        consecutive_failures=1, wait_duration=60.0, wait_backoff=2.0, max_wait_duration=8.0
    )
    fail(breaker, now=0.0)
    fail(breaker, now=60.0)
    assert breaker.wait == 60.0
    breaker.failed_probes = 10_000  # a day-long outage: no overflow
    assert breaker.wait == 60.0


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


SLOW = st.sampled_from([False, False, True])


class RateRulesAgainstReference(RuleBasedStateMachine):
    """Every trip rule on at once, over a small count window, with calls that overlap state
    changes, checked against a direct reading of the documented rules: trip on
    `consecutive_failures` in a row, or on a failure (a slow call) that leaves the window
    holding `minimum_calls` with the failure (slow-call) rate at its threshold; a fast
    success never trips it."""

    WAIT = 5.0

    def __init__(self):
        super().__init__()
        self.events = []
        self.now = 0.0
        self.in_flight: list[tuple[int, int]] = []  # (breaker permit, reference generation)

    @initialize(
        consecutive=st.integers(2, 12),
        rate=st.sampled_from([0.2, 0.25, 0.5, 0.6, 1.0]),
        slow_rate=st.sampled_from([0.3, 0.5, 1.0]),
        size=st.integers(1, 6),
        extra=st.integers(-5, 1),
        probes=st.integers(1, 3),
    )
    def configure(self, consecutive, rate, slow_rate, size, extra, probes):
        minimum = max(1, size + extra)  # now and then more than the window holds: never by rate
        self.config = CircuitBreakerConfig(
            consecutive_failures=consecutive,
            failure_rate=rate,
            slow_call_rate=slow_rate,
            slow_call_duration=1.0,
            minimum_calls=minimum,
            window_size=size,
            wait_duration=self.WAIT,
            half_open_probes=probes,
        )
        self.breaker = CircuitBreaker("m", self.config, emit=self.events.append)
        self.state = "closed"
        self.generation = 0
        self.window: deque[tuple[bool, bool]] = deque(maxlen=size)
        self.consecutive = 0
        self.opened_at = -math.inf
        self.probes_out = 0
        self.probe_successes = 0

    @rule(dt=st.floats(0.0, 4.0))
    def time_passes(self, dt):
        self.now += dt

    @rule(failed=st.booleans(), slow=SLOW)
    def call_completes_at_once(self, failed, slow):
        if self._acquire():
            self._finish(self.in_flight.pop(), failed, slow)

    @rule()
    def call_starts(self):
        self._acquire()

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), failed=st.booleans(), slow=SLOW)
    def call_finishes(self, data, failed, slow):
        index = data.draw(st.integers(0, len(self.in_flight) - 1))
        self._finish(self.in_flight.pop(index), failed, slow)

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def call_is_cancelled(self, data):
        permit, generation = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        self.breaker.release(permit)
        if generation == self.generation and self.state == "half_open":
            self.probes_out -= 1

    @precondition(lambda self: self.state != "isolated")
    @rule()
    def isolate(self):
        self.breaker.isolate(self.now, "test")
        self._move("isolated")

    @precondition(lambda self: self.state != "closed")
    @rule()
    def restore(self):
        self.breaker.restore(self.now, "test")
        self._move("closed")

    def _acquire(self):
        permit = self.breaker.try_acquire(self.now)
        if self.state == "open" and self.now >= self.opened_at + self.WAIT:
            self._move("half_open")
        probes_left = self.config.half_open_probes - self.probes_out - self.probe_successes
        admitted = self.state == "closed" or (self.state == "half_open" and probes_left > 0)
        assert (permit != NO_PERMIT) == admitted
        if admitted:
            self.probes_out += self.state == "half_open"
            self.in_flight.append((permit, self.generation))
        return admitted

    def _finish(self, call, failed, slow):
        permit, generation = call
        duration = 2.0 if slow else 0.0
        if failed:
            self.breaker.on_result(permit, failed=True, duration=duration, now=self.now)
        else:  # as the engine reports a success: through the policy, which may only note it
            ctx = Context(None, None)
            ctx.permit, ctx.attempt_started, ctx.attempt_ended = permit, self.now - duration, self.now
            CircuitBreakerPolicy(self.breaker).succeeded(ctx, Outcome(value="ok"))
        if generation != self.generation:
            return  # admitted in an earlier state: ignored
        if self.state == "closed":
            self.window.append((failed, slow))
            self.consecutive = self.consecutive + 1 if failed else 0
            calls = len(self.window)
            failures = sum(f for f, _ in self.window)
            slows = sum(s for _, s in self.window)
            if self.consecutive >= self.config.consecutive_failures or (
                calls >= self.config.minimum_calls
                and (
                    (failed and failures / calls >= self.config.failure_rate)
                    or (slow and slows / calls >= self.config.slow_call_rate)
                )
            ):
                self._move("open")
        elif self.state == "half_open":
            self.probes_out -= 1
            if failed:
                self._move("open")
            else:
                self.probe_successes += 1
                if self.probe_successes >= self.config.half_open_probes:
                    self._move("closed")

    def _move(self, state):
        self.state = state
        self.generation += 1
        self.probes_out = self.probe_successes = 0
        if state == "open":
            self.opened_at = self.now
        if state == "closed":
            self.window.clear()
            self.consecutive = 0

    @invariant()
    def same_state_generation_and_window(self):
        assert self.breaker.state.value == self.state
        assert self.breaker.generation == self.generation
        if self.state == "closed":
            # Read through a copy, so the breaker's own notes stay pending into the next steps.
            window = copy.deepcopy(self.breaker.window)
            window.passed(self.breaker.passed)
            snap = window.snapshot(self.now)
            assert (snap.calls, snap.failures, snap.slow) == (
                len(self.window),
                sum(f for f, _ in self.window),
                sum(s for _, s in self.window),
            )

    @invariant()
    def every_emitted_transition_is_legal_and_chained(self):
        previous = "closed"
        for event in self.events:
            assert event.from_state == previous
            assert CircuitState(event.to_state) in TRANSITIONS[CircuitState(event.from_state)]
            previous = event.to_state
        assert len(self.events) == self.generation


RateRulesAgainstReference.TestCase.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None
)
TestRateRulesAgainstReference = RateRulesAgainstReference.TestCase


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


def noted_success(breaker, now=0.0, duration=0.0):
    """A success as the engine reports it: through the policy, which may only note it."""
    ctx = Context(None, None)
    ctx.permit = breaker.try_acquire(now - duration)
    assert ctx.permit != NO_PERMIT
    ctx.attempt_started, ctx.attempt_ended = now - duration, now
    CircuitBreakerPolicy(breaker).succeeded(ctx, Outcome(value="ok"))


def test_a_noted_success_breaks_a_run_of_failures():
    breaker = CircuitBreaker("m", CircuitBreakerConfig(consecutive_failures=2))
    fail(breaker, now=1.0)
    noted_success(breaker, now=2.0)
    assert breaker.passed == [2.0]  # closed and fast: only noted
    fail(breaker, now=3.0)
    assert breaker.state is CircuitState.CLOSED  # one failure since the success, not two
    snap = breaker.snapshot(3.0)
    assert (snap.calls, snap.failures, snap.slow) == (3, 2, 0)


def test_noted_successes_stay_in_the_spell_they_ended_in():
    """A transition counts the noted successes first: after a restore the window is the new
    spell's alone, not the old spell's successes folded in late."""
    breaker = CircuitBreaker("m", CircuitBreakerConfig(window_seconds=60.0))
    for t in (1.0, 2.0, 3.0):
        noted_success(breaker, now=t)
    breaker.isolate(4.0, "test")
    breaker.restore(5.0, "test")
    assert breaker.snapshot(5.0).calls == 0


def test_a_slow_success_is_judged_at_once_and_notes_stay_bounded():
    config = CircuitBreakerConfig(slow_call_duration=1.0, slow_call_rate=0.5, minimum_calls=2)
    breaker = CircuitBreaker("m", config)
    for i in range(3 * PASSED_MOST - 1):
        noted_success(breaker, now=float(i))
        assert len(breaker.passed) < PASSED_MOST
    assert breaker.passed  # some still noted only when the slow ones come
    now = 3.0 * PASSED_MOST
    for i in range(DEFAULT_WINDOW_SIZE):  # slow ones are not noted: each is judged as it ends
        noted_success(breaker, now=now + i, duration=2.0)
        if breaker.state is CircuitState.OPEN:
            break
    # Opened by the slow call that made half the window slow: the noted fast ones were counted.
    assert breaker.state is CircuitState.OPEN and i + 1 == DEFAULT_WINDOW_SIZE // 2
