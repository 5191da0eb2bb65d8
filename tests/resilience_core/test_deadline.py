import asyncio

import pytest

from resilience_core import (
    AllModelsFailedError,
    AttemptTimeoutError,
    Deadline,
    DeadlineExceededError,
    FallbackUsed,
    ModelRouter,
    ModelSpec,
    Pipeline,
    Retry,
    RetryConfig,
    RetryScheduled,
    RouterConfig,
    Timeout,
    constant,
    stop_after_attempt,
)
from resilience_core.testing import never_answers
from tests.conftest import Scripted, recorded, run_on


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
    """3 retries (4 attempts of 0.3 s, 0.1 s apart) on each of 3 models would take 4.5 s; the
    4 s deadline lets the first two models use every retry, cuts the third model's third
    attempt short at 4 s, and starts nothing after it."""
    calls: dict[str, list[float]] = {f"m{i}": [] for i in range(3)}

    def silent(name):
        async def call(request):
            calls[name].append(clock.now())
            await never_answers(request)

        return call

    specs = [ModelSpec(name, silent(name), priority=i, timeout=0.3) for i, name in enumerate(calls)]
    config = RouterConfig(
        deadline=4.0,
        retry=RetryConfig(stop=stop_after_attempt(4), wait=constant(0.1)),
        retry_budget=None,  # the budget has its own tests; here every retry must be allowed
    )
    router = ModelRouter(specs, config, clock=clock)
    events = recorded(router)
    outcome = run_on(clock, lambda: router.execute({}))

    assert calls["m0"] == pytest.approx([0.0, 0.4, 0.8, 1.2])  # retried on its own timeout
    assert calls["m1"] == pytest.approx([1.5, 1.9, 2.3, 2.7])
    assert calls["m2"] == pytest.approx([3.0, 3.4, 3.8])  # the 4th would start after 4 s
    assert outcome.attempts == 11  # no attempt was even counted past the budget
    assert clock.now() == pytest.approx(4.0)
    assert isinstance(outcome.error, AllModelsFailedError)
    assert isinstance(outcome.error.failures["m0"], AttemptTimeoutError)
    assert isinstance(outcome.error.failures["m2"], DeadlineExceededError)
    fallbacks = [(e.from_model, e.to_model) for e in events if isinstance(e, FallbackUsed)]
    assert fallbacks == [("m0", "m1"), ("m1", "m2")]
    assert sum(isinstance(e, RetryScheduled) for e in events) == 3 + 3 + 2


def test_no_fallback_starts_when_the_remaining_budget_cannot_cover_it(clock):
    first = Scripted(clock, [(10.0, "late")], "first")
    second = Scripted(clock, ["ok"], "second")
    specs = [ModelSpec("first", first, timeout=0.3), ModelSpec("second", second, priority=1)]
    config = RouterConfig(
        deadline=1.0,
        min_attempt=0.3,
        retry=RetryConfig(stop=stop_after_attempt(3), wait=constant(0.0)),
        retry_budget=None,
    )
    outcome = run_on(clock, lambda: ModelRouter(specs, config, clock=clock).execute({}))
    assert first.calls == pytest.approx([0.0, 0.3, 0.6])
    assert second.calls == []  # at 0.9 only 0.1 s is left, less than min_attempt
    assert isinstance(outcome.error, AttemptTimeoutError)
    assert outcome.attempts == 3


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


@pytest.mark.parametrize("ends_with", ["an error", "an answer"])
def test_a_call_that_swallows_the_timeouts_cancellation_leaves_the_task_clean(ends_with):
    """Some clients turn a cancellation into an error (or an answer) of their own: the attempt
    keeps what the call said, and takes its own cancellation request back so the caller's
    task is not left looking cancelled (asyncio.timeout and TaskGroup read that count)."""

    async def swallows(request):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if ends_with == "an error":
                raise ConnectionError("connection closed") from None
            return "late answer"

    async def main():
        outcome = await Pipeline(Timeout(0.01)).execute(swallows, {})
        return outcome, asyncio.current_task().cancelling()

    outcome, cancelling = asyncio.run(main())
    if ends_with == "an error":
        assert isinstance(outcome.error, ConnectionError)
    else:
        assert outcome.value == "late answer"
    assert cancelling == 0
