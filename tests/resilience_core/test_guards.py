"""Guards run inside the attempt's frame when they sit next to it, and as ordinary policies
elsewhere: both ways must tell each guard the same story."""

import asyncio

import pytest

from resilience_core import (
    AnswerFailedError,
    AttemptTimeoutError,
    Bulkhead,
    BulkheadConfig,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Guard,
    Outcome,
    Pipeline,
    Settleable,
    Timeout,
)
from resilience_core.context import Context
from tests.conftest import PassThrough, Scripted, run_on


class Recorder(Guard):
    """Notes what it hears; refuses every attempt when `refuse` is set."""

    def __init__(self, name: str, log: list[tuple[str, ...]], refuse: bool = False) -> None:
        self.name = name
        self.log = log
        self.refuse = refuse

    def admit(self, ctx: Context) -> Outcome | None:
        self.log.append((self.name, "admit"))
        return Outcome(error=RuntimeError(f"{self.name} refused")) if self.refuse else None

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        self.log.append((self.name, "settle", "ok" if outcome.ok else "error", str(reached)))

    def abandon(self, ctx: Context) -> None:
        self.log.append((self.name, "abandon"))


def _both_ways(*guards: Guard) -> list[Pipeline]:
    return [Pipeline(*guards), Pipeline(*guards, PassThrough())]


@pytest.mark.parametrize("fused", [True, False])
def test_a_refusal_is_heard_by_the_outer_guards_only_and_nothing_is_called(clock, fused):
    log: list[tuple[str, ...]] = []
    guards = (Recorder("outer", log), Recorder("refuser", log, refuse=True), Recorder("inner", log))
    pipeline = _both_ways(*guards)[0 if fused else 1]
    upstream = Scripted(clock, ["answer"])
    outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert str(outcome.error) == "refuser refused"
    assert upstream.calls == []
    assert log == [("outer", "admit"), ("refuser", "admit"), ("outer", "settle", "error", "False")]


@pytest.mark.parametrize("fused", [True, False])
def test_every_guard_hears_an_attempt_innermost_first(clock, fused):
    log: list[tuple[str, ...]] = []
    pipeline = _both_ways(Recorder("outer", log), Recorder("inner", log))[0 if fused else 1]
    outcome = run_on(clock, lambda: pipeline.execute(Scripted(clock, [ValueError("x")]), {}, clock=clock))
    assert isinstance(outcome.error, ValueError) and outcome.attempts == 1
    assert log == [
        ("outer", "admit"),
        ("inner", "admit"),
        ("inner", "settle", "error", "True"),
        ("outer", "settle", "error", "True"),
    ]


@pytest.mark.parametrize("fused", [True, False])
def test_a_cancelled_attempt_is_abandoned_not_settled(clock, fused):
    log: list[tuple[str, ...]] = []
    pipeline = _both_ways(Recorder("outer", log), Recorder("inner", log))[0 if fused else 1]
    upstream = Scripted(clock, [(10.0, "late")])

    async def cancel_midway() -> bool:
        task = asyncio.ensure_future(pipeline.execute(upstream, {}, clock=clock))
        await clock.sleep(1.0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert run_on(clock, cancel_midway)
    assert log == [("outer", "admit"), ("inner", "admit"), ("inner", "abandon"), ("outer", "abandon")]


def _half_open(clock) -> CircuitBreaker:
    breaker = CircuitBreaker("m", CircuitBreakerConfig(half_open_probes=1, wait_duration=1.0))
    breaker.trip(clock.now(), "test")
    clock.advance(2.0)
    return breaker


@pytest.mark.parametrize("fused", [True, False])
def test_a_cancelled_probe_gives_its_permit_back(clock, fused):
    breaker = _half_open(clock)
    guard = CircuitBreakerPolicy(breaker)
    pipeline = Pipeline(guard) if fused else Pipeline(guard, PassThrough())
    slow, fast = Scripted(clock, [(10.0, "late")]), Scripted(clock, ["ok"])

    async def probe_cancelled_then_another() -> Outcome:
        task = asyncio.ensure_future(pipeline.execute(slow, {}, clock=clock))
        await clock.sleep(1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return await pipeline.execute(fast, {}, clock=clock)

    outcome = run_on(clock, probe_cancelled_then_another)
    assert outcome.ok and fast.calls  # the second probe got the permit back
    assert breaker.state is CircuitState.CLOSED


def test_a_probe_refused_by_the_bulkhead_further_in_gives_its_permit_back(clock):
    breaker = _half_open(clock)
    bulkhead = Bulkhead(BulkheadConfig(max_concurrent=1))
    outer = Pipeline(CircuitBreakerPolicy(breaker), bulkhead)
    hog = Pipeline(bulkhead)
    slow, fast = Scripted(clock, [(5.0, "hog")]), Scripted(clock, ["ok"])

    async def refused_then_admitted() -> tuple[Outcome, Outcome]:
        holder = asyncio.ensure_future(hog.execute(slow, {}, clock=clock))
        await clock.sleep(0.1)
        refused = await outer.execute(fast, {}, clock=clock)
        await holder
        return refused, await outer.execute(fast, {}, clock=clock)

    refused, admitted = run_on(clock, refused_then_admitted)
    assert isinstance(refused.error, BulkheadFullError)
    assert admitted.ok and breaker.state is CircuitState.CLOSED


def test_an_open_breaker_refuses_without_calling(clock):
    breaker = CircuitBreaker("m", CircuitBreakerConfig(wait_duration=60.0))
    breaker.trip(clock.now(), "test")
    upstream = Scripted(clock, ["ok"])
    pipeline = Pipeline(CircuitBreakerPolicy(breaker))
    outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert isinstance(outcome.error, CircuitOpenError) and upstream.calls == []


class _Started(Settleable):
    """A value whose result is known only later, like a stream whose first event arrived."""


class Timing(Guard):
    """Notes what each settle hears: the outcome's error type and the attempt's duration."""

    def __init__(self, name: str, log: list[tuple[str, ...]]) -> None:
        self.name = name
        self.log = log

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        error = type(outcome.error).__name__ if outcome.error is not None else "ok"
        self.log.append((self.name, error, f"{ctx.attempt_ended - ctx.attempt_started:.1f}s"))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("failed", [True, False])
def test_a_started_answer_is_heard_once_it_ends_innermost_first(clock, fused, failed):
    log: list[tuple[str, ...]] = []
    pipeline = _both_ways(Timing("outer", log), Timing("inner", log))[0 if fused else 1]
    started = _Started()
    outcome = run_on(clock, lambda: pipeline.execute(Scripted(clock, [(1.0, started)]), {}, clock=clock))
    assert outcome.value is started and log == []  # returned at once, judged later
    clock.advance(2.0)
    started.settle(failed=failed)
    started.settle(failed=not failed)  # only the first settle counts
    heard = "AnswerFailedError" if failed else "ok"
    assert log == [("inner", heard, "3.0s"), ("outer", heard, "3.0s")]


def test_an_answer_that_fails_after_it_started_is_an_upstream_failure_to_the_default_rules():
    from resilience_core import TRANSIENT

    assert TRANSIENT(Outcome(error=AnswerFailedError("m")))


class QuietRecorder(Recorder):
    """Says it has nothing to do on a plain success."""

    quiet_on_success = True


@pytest.mark.parametrize("fused", [True, False])
def test_a_guard_quiet_on_success_hears_failures_and_late_verdicts_only_when_fused(clock, fused):
    """The engine skips a quiet guard's settle on a success, and only there: a failure and a
    started stream's late verdict still reach it. As an ordinary policy it hears everything
    (its settle must then do nothing on a success, as it promised)."""
    log: list[tuple[str, ...]] = []
    pipeline = _both_ways(QuietRecorder("quiet", log), Recorder("loud", log))[0 if fused else 1]
    started = _Started()
    upstream = Scripted(clock, ["answer", RuntimeError("boom"), started])
    for _ in range(3):
        run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    started.settle(False)  # the stream ended well
    heard = [entry[2] for entry in log if entry[0] == "quiet" and entry[1] == "settle"]
    assert heard == (["error", "ok"] if fused else ["ok", "error", "ok"])
    assert [entry[2] for entry in log if entry[0] == "loud" and entry[1] == "settle"] == ["ok", "error", "ok"]


@pytest.mark.parametrize("inner_admit", [False, True])
def test_a_timeout_caps_the_attempt_whether_or_not_the_engine_applies_it(clock, inner_admit):
    """An innermost admitting Timeout is applied by the engine itself; with another admitting
    guard inside it, its own admit runs: the cap is the same either way, and it is set before
    the guards inside it are asked."""
    log: list[tuple[str, ...]] = []
    seen: list[float] = []

    class Reader(Recorder):
        def admit(self, ctx: Context) -> Outcome | None:
            seen.append(ctx.attempt_deadline - ctx.attempt_started)
            return super().admit(ctx)

    guards: tuple[Guard, ...] = (Timeout(0.5), Reader("inner", log)) if inner_admit else (Timeout(0.5),)
    pipeline = Pipeline(*guards)
    upstream = Scripted(clock, [(1.0, "late")])
    outcome = run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock))
    assert isinstance(outcome.error, AttemptTimeoutError)
    assert clock.now() == pytest.approx(0.5)
    assert seen == ([pytest.approx(0.5)] if inner_admit else [])
