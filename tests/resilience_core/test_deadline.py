import asyncio

import pytest

from resilience_core import (
    AllModelsFailedError,
    AttemptTimeoutError,
    Deadline,
    DeadlineExceededError,
    ModelRouter,
    ModelSpec,
    Pipeline,
    Retry,
    RetryConfig,
    RouterConfig,
    Timeout,
    constant,
    stop_after_attempt,
)
from resilience_core.testing import never_answers
from tests.conftest import Scripted, run_on


def test_timeout_turns_a_slow_attempt_into_attempt_timeout(clock):
    upstream = Scripted(clock, [(5.0, "late")])
    outcome = run_on(clock, lambda: Pipeline(Timeout(0.5)).execute(upstream, {}, clock=clock))
    assert isinstance(outcome.error, AttemptTimeoutError)
    assert clock.now() == pytest.approx(0.5)


def test_deadline_bounds_an_attempt_without_its_own_timeout(clock):
    outcome = run_on(clock, lambda: Pipeline(Deadline(2.0)).execute(never_answers, {}, clock=clock))
    assert isinstance(outcome.error, DeadlineExceededError)
    assert clock.now() == pytest.approx(2.0)


def test_deadline_wins_over_a_longer_attempt_timeout(clock):
    pipeline = Pipeline(Deadline(1.0), Timeout(5.0))
    outcome = run_on(clock, lambda: pipeline.execute(never_answers, {}, clock=clock))
    assert isinstance(outcome.error, DeadlineExceededError)
    assert clock.now() == pytest.approx(1.0)


def test_each_retry_gets_a_fresh_attempt_timeout_within_the_deadline(clock):
    upstream = Scripted(clock, [(10.0, "late")])
    config = RetryConfig(stop=stop_after_attempt(10), wait=constant(0.0))
    pipeline = Pipeline(Deadline(2.5), Retry(config), Timeout(1.0))
    outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert upstream.calls == pytest.approx([0.0, 1.0, 2.0])
    assert isinstance(outcome.error, DeadlineExceededError)
    assert clock.now() == pytest.approx(2.5)


def test_no_attempt_starts_when_the_remaining_budget_cannot_cover_it(clock):
    upstream = Scripted(clock, [(0.9, ConnectionError())])
    config = RetryConfig(stop=stop_after_attempt(10), wait=constant(0.0))
    pipeline = Pipeline(Deadline(2.0, min_attempt=0.5), Retry(config))
    run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert upstream.calls == pytest.approx([0.0, 0.9])  # at 1.8 only 0.2 s would remain


def test_silent_upstream_with_retries_and_fallbacks_finishes_within_the_deadline(clock):
    """Three attempts on each of three models, all silent: the deadline still holds."""
    calls = []

    async def silent(request):
        calls.append(clock.now())
        await never_answers(request)

    specs = [ModelSpec(f"m{i}", silent, priority=i, timeout=30.0) for i in range(3)]
    config = RouterConfig(deadline=4.0, retry=RetryConfig(stop=stop_after_attempt(3), wait=constant(0.1)))
    router = ModelRouter(specs, config, clock=clock)
    outcome = run_on(clock, lambda: router.execute({}))
    assert outcome.error is not None
    assert clock.now() <= 4.0 + 1e-9
    assert isinstance(outcome.error, DeadlineExceededError | AllModelsFailedError)
    assert all(t < 4.0 for t in calls)


def test_outer_cancellation_is_not_mistaken_for_a_timeout():
    async def main():
        pipeline = Pipeline(Timeout(10.0))
        task = asyncio.ensure_future(pipeline.execute(never_answers, {}))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_real_loop_clock_enforces_timeouts():
    async def main():
        outcome = await Pipeline(Timeout(0.05)).execute(never_answers, {})
        return outcome

    outcome = asyncio.run(main())
    assert isinstance(outcome.error, AttemptTimeoutError)


def test_outer_cancel_in_the_same_turn_as_the_timeout_still_propagates(clock):
    async def main():
        task = asyncio.ensure_future(Pipeline(Timeout(1.0)).execute(never_answers, {}, clock=clock))
        await clock.settle()
        clock.advance(1.0)  # the watchdog cancels the attempt for its timeout...
        task.cancel()  # ...and the caller gives up in the same loop turn
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
