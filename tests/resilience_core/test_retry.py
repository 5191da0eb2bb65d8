import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience_core import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitOpenError,
    Deadline,
    EventBus,
    Retry,
    RetryBudget,
    RetryBudgetExhausted,
    RetryConfig,
    RetryScheduled,
    constant,
    exponential,
    jitter,
    stop_after_attempt,
    stop_after_delay,
)
from resilience_core import Pipeline as _Pipeline
from tests.conftest import PassThrough, Scripted, error, run_on

_FUSED = True


@pytest.fixture(autouse=True, scope="module", params=["fused", "unfused"])
def shape(request):
    """Every test twice: retry in the attempt's frame (only guards between it and the call)
    and as its own layer (something else innermost)."""
    global _FUSED
    _FUSED = request.param == "fused"
    yield request.param
    _FUSED = True


def Pipeline(*policies):  # the class's name on purpose: the tests read as they would
    return _Pipeline(*policies) if _FUSED else _Pipeline(*policies, PassThrough())


def execute(clock, pipeline, upstream, events=None):
    return run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock, events=events))


def test_retries_transient_errors_until_success(clock):
    upstream = Scripted(clock, [error(503), error(500), "ok"])
    outcome = execute(clock, Pipeline(Retry(RetryConfig(wait=constant(0.1)))), upstream)
    assert outcome.value == "ok"
    assert outcome.attempts == 3
    assert upstream.calls == pytest.approx([0.0, 0.1, 0.2])


@pytest.mark.parametrize(
    "failure",
    [
        error(400),
        error(401),
        error(403),
        error(400, code="context_length_exceeded"),
        error(400, code="content_filter"),
    ],
)
def test_never_retries_non_retryable_errors(clock, failure):
    upstream = Scripted(clock, [failure, "ok"])
    outcome = execute(clock, Pipeline(Retry()), upstream)
    assert outcome.error is failure
    assert len(upstream.calls) == 1


@pytest.mark.parametrize("status", [408, 425, 429, 500, 501, 502, 503, 504, 520, 599])
def test_every_5xx_and_the_retryable_4xx_are_retried(clock, status):
    upstream = Scripted(clock, [error(status), "ok"])
    outcome = execute(clock, Pipeline(Retry(RetryConfig(wait=constant(0.0)))), upstream)
    assert outcome.value == "ok" and len(upstream.calls) == 2


def test_retries_timeouts_and_connection_errors(clock):
    upstream = Scripted(clock, [TimeoutError(), ConnectionResetError(), "ok"])
    outcome = execute(clock, Pipeline(Retry(RetryConfig(wait=constant(0.0)))), upstream)
    assert outcome.value == "ok"


def test_gives_up_after_max_attempts_with_last_error(clock):
    upstream = Scripted(clock, [error(503)])
    outcome = execute(clock, Pipeline(Retry(RetryConfig(stop=stop_after_attempt(4)))), upstream)
    assert outcome.error.status == 503
    assert len(upstream.calls) == 4


def test_honours_retry_after_when_longer_than_backoff(clock):
    upstream = Scripted(clock, [error(429, retry_after=2.5), "ok"])
    events = EventBus()
    seen = []
    events.subscribe(seen.append)
    outcome = execute(clock, Pipeline(Retry(RetryConfig(wait=constant(0.1)))), upstream, events)
    assert outcome.value == "ok"
    assert upstream.calls[1] - upstream.calls[0] >= 2.5
    scheduled = [e for e in seen if isinstance(e, RetryScheduled)]
    assert scheduled[0].delay == pytest.approx(2.5)


def test_skips_retry_that_cannot_fit_the_deadline(clock):
    upstream = Scripted(clock, [error(429, retry_after=5.0), "ok"])
    outcome = execute(clock, Pipeline(Deadline(3.0), Retry()), upstream)
    assert outcome.error.status == 429
    assert len(upstream.calls) == 1
    assert clock.now() < 3.0


def test_stop_after_delay_counts_from_first_attempt(clock):
    upstream = Scripted(clock, [(1.0, error(503))])
    config = RetryConfig(stop=stop_after_delay(2.5) | stop_after_attempt(100), wait=constant(0.0))
    execute(clock, Pipeline(Retry(config)), upstream)
    assert len(upstream.calls) == 3  # attempts start at 0, 1, 2; after the third 3 s have passed


def test_retry_budget_caps_retries_as_share_of_calls(clock):
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, cap=1.0)
    upstream = Scripted(clock, [error(503)])
    pipeline = Pipeline(Retry(RetryConfig(wait=constant(0.0)), budget=budget))
    events = EventBus()
    seen = []
    events.subscribe(seen.append)

    async def many():
        for _ in range(50):
            await pipeline.execute(upstream, {}, clock=clock, events=events)

    run_on(clock, many)
    retries = len(upstream.calls) - 50
    # 1 token to start, 0.2 per call after: about 1 + 50 * 0.2 = 11 retries, never 100.
    assert 8 <= retries <= 12
    assert any(isinstance(e, RetryBudgetExhausted) for e in seen)


class _EagerBudget:
    """The budget as its docstring states it: each deposit credited at once, capped each time."""

    def __init__(self, ratio: float, min_per_second: float, cap: float) -> None:
        self.ratio, self.min_per_second, self.cap = ratio, min_per_second, cap
        self.balance = cap
        self.last: float | None = None

    def deposit(self, now: float) -> None:
        earned = self.ratio + ((now - self.last) * self.min_per_second if self.last is not None else 0.0)
        self.last = now
        self.balance = min(self.cap, self.balance + earned)

    def try_spend(self) -> bool:
        if self.balance >= 1.0:
            self.balance -= 1.0
            return True
        return False


@settings(max_examples=300, deadline=None)
@given(
    ratio=st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0]),
    min_per_second=st.sampled_from([0.0, 0.25, 1.0, 2.0]),
    cap=st.sampled_from([1.0, 2.0, 10.0]),
    steps=st.lists(st.one_of(st.integers(0, 16).map(lambda eighths: eighths / 8), st.none()), max_size=80),
)
def test_retry_budget_credited_late_grants_what_crediting_at_once_would(ratio, min_per_second, cap, steps):
    # Dyadic figures keep both sums exact, so every answer must agree, not just nearly.
    budget = RetryBudget(ratio, min_per_second=min_per_second, cap=cap)
    eager = _EagerBudget(ratio, min_per_second, cap)
    now = 0.0
    for step in steps:
        if step is None:
            assert budget.try_spend() == eager.try_spend()
        else:
            now += step
            budget.deposit(now)
            eager.deposit(now)
    assert budget.balance() == eager.balance


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(0.001, 1.0),
    cap=st.floats(0.01, 5.0),
    spread=st.floats(0.0, 0.5),
    attempt=st.integers(1, 30),
    seed=st.integers(0, 2**32),
)
def test_backoff_with_jitter_stays_within_bounds(base, cap, spread, attempt, seed):
    wait = exponential(base, cap=cap) + jitter(spread)
    value = wait(attempt, random.Random(seed))
    core = min(cap, base * 2 ** (attempt - 1))
    assert core <= value <= core + spread
    assert value <= wait.upper


@settings(max_examples=100, deadline=None)
@given(
    deadline=st.floats(0.5, 20.0),
    attempts=st.integers(1, 8),
    latency=st.floats(0.0, 3.0),
    base=st.floats(0.0, 2.0),
    seed=st.integers(0, 1000),
)
def test_retry_schedule_never_passes_deadline_and_attempts_are_bounded(
    deadline, attempts, latency, base, seed
):
    from resilience_core.testing import FakeClock

    clock = FakeClock()
    upstream = Scripted(clock, [(latency, error(503))])
    config = RetryConfig(stop=stop_after_attempt(attempts), wait=exponential(base) + jitter(0.1))
    pipeline = Pipeline(Deadline(deadline), Retry(config))
    outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock, rng=random.Random(seed)))
    assert outcome.error is not None
    assert len(upstream.calls) <= attempts
    assert all(t < deadline for t in upstream.calls)
    assert clock.now() <= deadline + 1e-9


@pytest.mark.parametrize("code", ["context_length_exceeded", "content_filter"])
def test_provider_error_codes_are_final_whatever_the_status(clock, code):
    failure = error(503, code=code)  # some gateways wrap these in a 5xx
    upstream = Scripted(clock, [failure, "ok"])
    outcome = execute(clock, Pipeline(Retry()), upstream)
    assert outcome.error is failure
    assert len(upstream.calls) == 1


def test_a_retry_the_breaker_refuses_ends_with_the_upstreams_own_failure(clock):
    breaker = CircuitBreaker("m", CircuitBreakerConfig(consecutive_failures=1, wait_duration=60.0))
    upstream = Scripted(clock, [error(503)])
    pipeline = Pipeline(Retry(RetryConfig(wait=constant(0.0))), CircuitBreakerPolicy(breaker))
    outcome = execute(clock, pipeline, upstream)
    assert len(upstream.calls) == 1  # the first failure opened the breaker: the retry was refused
    assert not isinstance(outcome.error, CircuitOpenError)
    assert outcome.error.status == 503


def test_the_first_attempt_refused_is_returned_as_it_is(clock):
    breaker = CircuitBreaker("m", CircuitBreakerConfig(consecutive_failures=1, wait_duration=60.0))
    breaker.trip(0.0, "test")
    upstream = Scripted(clock, ["ok"])
    outcome = execute(clock, Pipeline(Retry(), CircuitBreakerPolicy(breaker)), upstream)
    assert isinstance(outcome.error, CircuitOpenError)
    assert upstream.calls == []
