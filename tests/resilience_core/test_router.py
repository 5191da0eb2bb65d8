import asyncio
import random
from collections import Counter

import pytest

from resilience_core import (
    AuditTrail,
    CircuitBreakerConfig,
    CircuitState,
    CircuitStateChanged,
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
from resilience_core.testing import FakeClock
from tests.conftest import Scripted, error, recorded, run_on


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


@pytest.mark.parametrize("window", ["count", "time"])
def test_thousand_concurrent_calls_are_counted_exactly_once(tmp_path, window):
    """1,000 requests launched at once on one loop, arriving over 0.1 s (fake time, real
    interleaving: 100+ upstream calls in flight together, breakers tripping and closing under
    them): metrics, breaker windows and the audit trail must each count every call exactly once."""
    clock = FakeClock()
    rng = random.Random(12)
    # Each upstream call as (breaker generation at start, at end, failed): a breaker window
    # holds exactly the calls that started and ended in the generation of its last close.
    seen: dict[str, list[tuple[int, int, bool]]] = {"a": [], "b": [], "c": []}
    router: ModelRouter
    in_flight = peak = 0

    def model(name, failure_rate):
        async def call(request):
            nonlocal in_flight, peak
            breaker = router.models[name].breaker
            started = breaker.generation
            in_flight += 1
            peak = max(peak, in_flight)
            await clock.sleep(rng.random() * 0.02)
            in_flight -= 1
            failed = rng.random() < failure_rate
            seen[name].append((started, breaker.generation, failed))
            if failed:
                raise ModelCallError(f"{name} failed", status=503)
            return name

        return call

    # Big enough to hold every call of the test: nothing is evicted, so counts compare exactly.
    big = {"window_size": 10_000} if window == "count" else {"window_seconds": 3600.0}
    router = ModelRouter(
        [
            ModelSpec("a", model("a", 0.6)),
            ModelSpec("b", model("b", 0.3), priority=1),
            ModelSpec("c", model("c", 0.0), priority=2),
        ],
        RouterConfig(
            retry=RetryConfig(stop=stop_after_attempt(2), wait=constant(0.0)),
            breaker=CircuitBreakerConfig(consecutive_failures=5, wait_duration=0.01, **big),
            restoration=RestorationConfig(hold=0.005),
        ),
        clock=clock,
        rng=rng,
    )
    transitions = recorded(router)
    trail = AuditTrail(tmp_path / "audit.jsonl")
    trail.attach(router.events)

    async def arrive(i):
        await clock.sleep(rng.random() * 0.1)  # spread so breakers trip and close again
        return await router.execute({"i": i})

    async def concurrently():
        return await asyncio.gather(*(arrive(i) for i in range(1000)))

    outcomes = run_on(clock, concurrently)
    trail.close()
    audit = read_audit(trail.path)
    transitions = [e for e in transitions if isinstance(e, CircuitStateChanged)]

    assert all(o.ok for o in outcomes)
    assert sum(o.attempts for o in outcomes) == sum(len(calls) for calls in seen.values())
    for name, handle in router.models.items():
        assert handle.metrics.calls == len(seen[name]), name
        assert handle.metrics.failures == sum(failed for *_, failed in seen[name]), name
    # Every transition is legal, chained, and in the audit exactly once, in order.
    per_model = {}
    for event in transitions:
        assert event.from_state == per_model.get(event.model, "closed")
        per_model[event.model] = event.to_state
    audited = [(r["model"], r["from"], r["to"]) for r in audit if r["kind"] == "CircuitStateChanged"]
    assert audited == [(e.model, e.from_state, e.to_state) for e in transitions]
    assert {e.model for e in transitions if e.to_state == "open"} >= {"a", "b"}
    # A breaker's window holds exactly the calls that started and ended in the generation of
    # its last close (the window is reset on closing; results of an older generation are
    # ignored), whatever state it is in now. Generation = transitions so far.
    spells = {}
    for name, handle in router.models.items():
        mine = [e for e in transitions if e.model == name]
        assert handle.breaker.generation == len(mine)
        closed_at = max((i + 1 for i, e in enumerate(mine) if e.to_state == "closed"), default=0)
        spell = [failed for start, end, failed in seen[name] if start == end == closed_at]
        snap = handle.breaker.snapshot(clock.now())
        assert (snap.calls, snap.failures) == (len(spell), sum(spell)), name
        spells[name] = (closed_at, len(spell))
    assert spells["c"] == (0, len(seen["c"]))  # never tripped: its window holds every call
    assert any(closed_at > 0 and calls > 0 for closed_at, calls in spells.values()), spells
    assert peak >= 100  # a hundred and more of upstream calls were in flight at the same time


def test_a_budget_the_caller_already_holds_bounds_the_routers_own_deadline(clock):
    """A chain of routers (the gateway's fallback groups) shares one deadline passed in."""
    slow = Scripted(clock, [(10.0, "late")], name="slow")
    router = ModelRouter(
        [ModelSpec("slow", slow, timeout=30.0)], RouterConfig(deadline=5.0, retry=None), clock=clock
    )
    outcome = run_on(clock, lambda: router.execute({}, deadline=clock.now() + 1.5))
    assert outcome.error is not None
    assert clock.now() == pytest.approx(1.5)
