import asyncio
import random
from collections import Counter

import pytest

from resilience_core import (
    AuditTrail,
    CircuitBreakerConfig,
    CircuitState,
    Hedged,
    ModelCallError,
    ModelRouter,
    ModelSpec,
    RestorationConfig,
    RetryConfig,
    RouterConfig,
    StaticAnswer,
    Weighted,
    constant,
    read_audit,
    stop_after_attempt,
)
from tests.conftest import Scripted, error, run_on


def test_call_returns_answer_model_attempts_and_degraded_flag(clock):
    a = Scripted(clock, [error(503), "from a"])
    router = ModelRouter(
        [ModelSpec("a", a)], RouterConfig(retry=RetryConfig(wait=constant(0.0))), clock=clock
    )
    answer = run_on(clock, lambda: router.call({}))
    assert (answer.value, answer.model, answer.attempts, answer.degraded) == (
        "from a",
        "a",
        2,
        False,
    )


def test_failure_is_raised_by_call_and_returned_by_execute(clock):
    router = ModelRouter([ModelSpec("a", Scripted(clock, [error(503)]))], clock=clock)
    with pytest.raises(ModelCallError):
        run_on(clock, lambda: router.call({}))
    assert run_on(clock, lambda: router.execute({})).error.status == 503


def test_everything_down_serves_a_degraded_answer(clock):
    router = ModelRouter(
        [
            ModelSpec("a", Scripted(clock, [error(503)])),
            ModelSpec("b", Scripted(clock, [error(500)])),
        ],
        RouterConfig(degraded=StaticAnswer("canned")),
        clock=clock,
    )
    answer = run_on(clock, lambda: router.call({}))
    assert (answer.value, answer.degraded, answer.model) == ("canned", True, "degraded")


def test_describe_lists_the_composition_outermost_first(clock):
    router = ModelRouter([ModelSpec("a", Scripted(clock, ["x"]), timeout=1.0)], clock=clock)
    assert [line.split("(")[0] for line in router.describe()] == [
        "Deadline",
        "Fallback",
        "Retry",
        "AutoRecovery",
        "CircuitBreaker",
        "Timeout",
        "Metrics",
    ]


def test_weighted_router_shifts_traffic_away_from_a_failing_model(clock):
    good = Scripted(clock, [(0.05, "good")])
    bad = Scripted(clock, [(0.05, error(503))])
    router = ModelRouter(
        [ModelSpec("good", good), ModelSpec("bad", bad)],
        RouterConfig(
            plan=Weighted(),
            retry=None,
            breaker=CircuitBreakerConfig(consecutive_failures=1000, failure_rate=1.0),
        ),
        clock=clock,
        rng=random.Random(2),
    )

    async def many():
        return [await router.execute({}) for _ in range(400)]

    outcomes = run_on(clock, many)
    assert all(o.ok for o in outcomes)
    assert len(bad.calls) < 100  # EWMA error drives its weight towards zero


def test_hedged_router_answers_from_the_fast_model(clock):
    slow = Scripted(clock, [(3.0, "slow")])
    fast = Scripted(clock, [(0.2, "fast")])
    router = ModelRouter(
        [ModelSpec("slow", slow), ModelSpec("fast", fast, priority=1)],
        RouterConfig(plan=Hedged(0.5)),
        clock=clock,
    )
    answer = run_on(clock, lambda: router.call({}))
    assert answer.model == "fast"
    assert clock.now() == pytest.approx(0.7)


def test_outage_then_recovery_restores_traffic_progressively(clock):
    state = {"down": True}

    async def flaky(request):
        await clock.sleep(0.01)
        if state["down"]:
            raise ModelCallError("down", status=503)
        return "primary"

    backup = Scripted(clock, [(0.01, "backup")])
    router = ModelRouter(
        [ModelSpec("primary", flaky), ModelSpec("backup", backup, priority=1)],
        RouterConfig(
            retry=None,
            breaker=CircuitBreakerConfig(consecutive_failures=3, wait_duration=2.0, half_open_probes=1),
            restoration=RestorationConfig(steps=(0.1, 0.5, 1.0), hold=5.0),
        ),
        clock=clock,
        rng=random.Random(4),
    )

    async def traffic(seconds):
        served = Counter()
        end = clock.now() + seconds
        while clock.now() < end:
            served[(await router.call({})).model] += 1
            await clock.sleep(0.04)
        return served

    down = run_on(clock, lambda: traffic(10))
    breaker = router.models["primary"].breaker
    assert breaker.state is CircuitState.OPEN
    state["down"] = False

    async def until_closed():
        while breaker.state is not CircuitState.CLOSED:
            await router.call({})
            await clock.sleep(0.04)

    run_on(clock, until_closed)  # a half-open probe succeeds within the wait duration
    assert clock.now() < 10 + 2.1
    early = run_on(clock, lambda: traffic(4.9))  # 10 % of traffic
    middle = run_on(clock, lambda: traffic(5))  # 50 %
    late = run_on(clock, lambda: traffic(5))  # 100 %
    assert down["primary"] == 0
    share = lambda c: c["primary"] / sum(c.values())  # noqa: E731
    assert share(early) < 0.3
    assert 0.3 < share(middle) < 0.7
    assert share(late) > 0.95


def test_thousand_concurrent_calls_are_counted_exactly_once(tmp_path):
    """Real event loop, real concurrency: counts must reconcile exactly."""

    async def main():
        rng = random.Random(11)
        calls = Counter()

        def model(name, failure_rate):
            async def call(request):
                calls[name] += 1
                await asyncio.sleep(rng.random() * 0.002)
                if rng.random() < failure_rate:
                    raise ModelCallError(f"{name} failed", status=503)
                return name

            return call

        specs = [
            ModelSpec("a", model("a", 0.6)),
            ModelSpec("b", model("b", 0.3), priority=1),
            ModelSpec("c", model("c", 0.0), priority=2),
        ]
        router = ModelRouter(
            specs,
            RouterConfig(
                retry=RetryConfig(stop=stop_after_attempt(2), wait=constant(0.0)),
                breaker=CircuitBreakerConfig(consecutive_failures=5, wait_duration=0.01),
                restoration=RestorationConfig(hold=0.005),
            ),
            rng=rng,
        )
        transitions = []
        router.events.subscribe(lambda e: transitions.append(e) if e.kind == "CircuitStateChanged" else None)
        trail = AuditTrail(tmp_path / "audit.jsonl")
        router.events.subscribe(trail)
        outcomes = await asyncio.gather(*(router.execute({"i": i}) for i in range(1000)))
        trail.close()
        return router, calls, outcomes, transitions, read_audit(trail.path)

    router, calls, outcomes, transitions, audit = asyncio.run(main())
    assert all(o.ok for o in outcomes)
    assert sum(o.attempts for o in outcomes) == sum(calls.values())
    for name, handle in router.models.items():
        assert handle.metrics.calls == calls[name], name
    # Every transition is legal, chained, and in the audit exactly once, in order.
    per_model = {}
    for event in transitions:
        assert event.from_state == per_model.get(event.model, "closed")
        per_model[event.model] = event.to_state
    audited = [(r["model"], r["from"], r["to"]) for r in audit if r["kind"] == "CircuitStateChanged"]
    assert audited == [(e.model, e.from_state, e.to_state) for e in transitions]
    assert transitions, "the failing models should have tripped at least once"
    # The breaker's window saw exactly the calls made since its last close.
    for handle in router.models.values():
        if handle.breaker.state is CircuitState.CLOSED:
            assert handle.breaker.window.snapshot(0).calls <= handle.metrics.calls
