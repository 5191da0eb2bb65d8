import math
import random
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from resilience_core import (
    AdminControls,
    AllModelsFailedError,
    CachedAnswer,
    Context,
    Deadline,
    Degrade,
    DegradedAnswerServed,
    EventBus,
    Fallback,
    FallbackUsed,
    Hedged,
    HedgeStarted,
    ModelRouter,
    ModelSpec,
    NoCandidateError,
    ParallelFallback,
    Pipeline,
    Retry,
    RetryConfig,
    RouterConfig,
    Sequential,
    SequentialFallback,
    StaticAnswer,
    Timeout,
    Weighted,
    WeightedFallback,
    constant,
    stop_after_attempt,
)
from resilience_core.testing import FakeClock
from tests.conftest import Scripted, error, recorded, run_on


@dataclass(eq=False)
class Model:
    name: str
    call: Scripted
    priority: int = 0
    share: float = 1.0
    _weight: float = 1.0
    pipeline: Pipeline = field(default_factory=Pipeline)
    honours_failover: bool = False
    """True: its pipeline's engine runs the fallback's rest (as a router's models do)."""

    def weight(self):
        return self._weight

    def admission(self):
        return self.share

    def run(self, ctx):
        return self.pipeline.run(ctx)


def route(clock, fallback, outer=(), events=None, rng=None):
    pipeline = Pipeline(*outer, terminal=fallback.run)

    async def go():
        ctx = Context({}, None, clock=clock, events=events, rng=rng or random.Random(1))
        outcome = await pipeline.run(ctx)
        outcome.attempts = ctx.attempts
        return outcome

    return run_on(clock, go)


def test_sequential_tries_by_priority_until_one_succeeds(clock):
    a = Model("a", Scripted(clock, [error(503)]), priority=0)
    b = Model("b", Scripted(clock, ["from b"]), priority=1)
    c = Model("c", Scripted(clock, ["from c"]), priority=2)
    events = EventBus()
    seen = []
    events.subscribe(seen.append)
    outcome = route(clock, SequentialFallback([c, b, a]), events=events)
    assert (outcome.value, outcome.model, outcome.attempts) == ("from b", "b", 2)
    assert len(c.call.calls) == 0
    assert [(e.from_model, e.to_model) for e in seen if isinstance(e, FallbackUsed)] == [("a", "b")]


SCRIPT_ITEMS = st.sampled_from(
    ["ok", error(503), error(500), error(400), error(429), ConnectionRefusedError()]
)


@settings(max_examples=60, deadline=None)
@given(
    scripts=st.lists(st.lists(SCRIPT_ITEMS, min_size=1, max_size=3), min_size=1, max_size=4),
    retried=st.booleans(),
)
@example(scripts=[[error(400)], ["ok"]], retried=False)  # final: the rest is never asked
@example(scripts=[[error(503)], [error(500)], ["ok"]], retried=True)
def test_first_candidate_handing_its_failure_to_its_engine_changes_nothing(scripts, retried):
    """The fallback's rest runs in the first candidate's engine when that candidate's pipeline
    is the engine itself (`Context.failover`), or in a frame of the fallback's own: the same
    answer, attempts, calls and fallback events either way."""

    def outcome_of(honours: bool):
        clock = FakeClock()
        policies = (Retry(RetryConfig(stop=stop_after_attempt(2), wait=constant(0.01))),) if retried else ()
        models = [
            Model(f"m{i}", Scripted(clock, script), i, pipeline=Pipeline(*policies), honours_failover=honours)
            for i, script in enumerate(scripts)
        ]
        events = EventBus()
        seen = []
        events.subscribe(seen.append)
        fallback = SequentialFallback(models)

        async def go():
            return await fallback.run(Context({}, None, clock=clock, events=events, rng=random.Random(1)))

        outcome = run_on(clock, go)
        failure = type(outcome.error).__name__ if outcome.error is not None else None
        return outcome.value, outcome.model, outcome.attempts, failure, seen, [m.call.calls for m in models]

    assert outcome_of(True) == outcome_of(False)


def test_a_context_used_again_does_not_run_a_fallback_it_already_finished(clock):
    """The engine takes the failover as it starts: a first candidate that answered leaves none
    behind for a later pipeline on the same context to run."""
    a = Model("a", Scripted(clock, ["from a"]), honours_failover=True)
    b = Model("b", Scripted(clock, ["from b"]), priority=1, honours_failover=True)
    fallback = SequentialFallback([a, b])
    down = Scripted(clock, [error(503)])

    async def go():
        ctx = Context({}, None, clock=clock)
        first = await fallback.run(ctx)
        ctx.call = down
        return first, await Pipeline().run(ctx)

    first, again = run_on(clock, go)
    assert (first.value, first.model) == ("from a", "a")
    assert again.error.status == 503 and b.call.calls == []


@pytest.mark.parametrize("honours", [False, True])
def test_fallback_events_name_the_request_not_the_first_model(clock, honours):
    """The first candidate runs on the request's own context (no fork): once it failed, the
    context is the request's again, so the events of the fallback's rest name the model the
    request asked for, as a forked first candidate left it, not the one that failed."""
    a = Model("a", Scripted(clock, [error(503)]), honours_failover=honours)
    b = Model("b", Scripted(clock, ["from b"]), priority=1, honours_failover=honours)
    events = EventBus()
    seen = []
    events.subscribe(seen.append)

    async def go():
        ctx = Context({}, None, clock=clock, events=events, rng=random.Random(1), model="chat")
        return await SequentialFallback([a, b]).run(ctx)

    outcome = run_on(clock, go)
    assert (outcome.value, outcome.model) == ("from b", "b")
    assert [(e.model, e.from_model, e.to_model) for e in seen if isinstance(e, FallbackUsed)] == [
        ("chat", "a", "b")
    ]


def test_all_failing_reports_every_failure(clock):
    a = Model("a", Scripted(clock, [error(503)]))
    b = Model("b", Scripted(clock, [error(500)]), priority=1)
    outcome = route(clock, Fallback([a, b]))
    assert isinstance(outcome.error, AllModelsFailedError)
    assert set(outcome.error.failures) == {"a", "b"}


def test_client_error_is_final_and_not_passed_to_the_next_model(clock):
    a = Model("a", Scripted(clock, [error(400)]))
    b = Model("b", Scripted(clock, ["ok"]), priority=1)
    outcome = route(clock, Fallback([a, b]))
    assert outcome.error.status == 400
    assert b.call.calls == []


def test_context_length_error_falls_back_to_a_larger_model(clock):
    a = Model("a", Scripted(clock, [error(400, code="context_length_exceeded")]))
    b = Model("b", Scripted(clock, ["ok"]), priority=1)
    assert route(clock, Fallback([a, b])).value == "ok"


def test_hedged_starts_next_after_delay_and_cancels_the_loser(clock):
    slow = Model("slow", Scripted(clock, [(5.0, "slow answer")]), priority=0)
    fast = Model("fast", Scripted(clock, [(0.1, "fast answer")]), priority=1)
    events = EventBus()
    seen = []
    events.subscribe(seen.append)
    outcome = route(clock, ParallelFallback([slow, fast], delay=0.3), events=events)
    assert outcome.value == "fast answer"
    assert clock.now() == pytest.approx(0.4)
    assert fast.call.calls == pytest.approx([0.3])
    assert outcome.attempts == 2
    assert [e.model for e in seen if isinstance(e, HedgeStarted)] == ["fast"]


def test_hedged_with_zero_delay_races_everyone(clock):
    models = [Model(f"m{i}", Scripted(clock, [(1.0 - i * 0.2, f"a{i}")]), priority=i) for i in range(4)]
    outcome = route(clock, Fallback(models, Hedged(0.0)))
    assert outcome.value == "a3"
    assert all(m.call.calls == [0.0] for m in models)
    assert clock.now() == pytest.approx(0.4)


def test_hedged_moves_on_at_once_when_the_first_fails_fast(clock):
    a = Model("a", Scripted(clock, [(0.01, error(503))]))
    b = Model("b", Scripted(clock, ["ok"]), priority=1)
    outcome = route(clock, Fallback([a, b], Hedged(10.0)))
    assert outcome.value == "ok"
    assert b.call.calls == pytest.approx([0.01])


def test_hedging_respects_the_deadline(clock):
    models = [
        Model(f"m{i}", Scripted(clock, [(100.0, "late")]), priority=i, pipeline=Pipeline(Timeout(50)))
        for i in range(5)
    ]
    outcome = route(clock, Fallback(models, Hedged(1.0)), outer=(Deadline(2.5),))
    assert outcome.error is not None
    assert clock.now() == pytest.approx(2.5)
    started = [m for m in models if m.call.calls]
    assert len(started) == 3  # at 0, 1 and 2 s; none after the budget


def test_weighted_first_pick_follows_weights(clock):
    counts = Counter()
    a = Model("a", Scripted(clock, ["a"]), _weight=3.0)
    b = Model("b", Scripted(clock, ["b"]), _weight=1.0)
    rng = random.Random(5)
    fallback = WeightedFallback([a, b])
    for _ in range(4000):
        counts[route(clock, fallback, rng=rng).value] += 1
    assert counts["a"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_zero_weight_and_no_candidates_are_reported(clock):
    a = Model("a", Scripted(clock, ["a"]), _weight=0.0)
    outcome = route(clock, Fallback([a], Weighted()))
    assert isinstance(outcome.error, NoCandidateError)


def test_restoring_model_is_tried_first_only_for_its_share(clock):
    restoring = Model("new", Scripted(clock, ["new"]), priority=0, share=0.1)
    steady = Model("old", Scripted(clock, ["old"]), priority=1)
    rng = random.Random(3)
    served = Counter(route(clock, Fallback([restoring, steady]), rng=rng).value for _ in range(3000))
    assert served["new"] / 3000 == pytest.approx(0.1, abs=0.025)


def test_restoring_model_is_still_a_reserve_when_others_fail(clock):
    restoring = Model("new", Scripted(clock, ["new"]), priority=0, share=0.0)
    broken = Model("old", Scripted(clock, [error(503)]), priority=1)
    assert route(clock, Fallback([restoring, broken])).value == "new"


def test_degraded_static_answer_is_marked_and_announced(clock):
    a = Model("a", Scripted(clock, [error(503)]))
    events = EventBus()
    seen = []
    events.subscribe(seen.append)
    outcome = route(clock, Fallback([a]), outer=(Degrade(StaticAnswer("sorry")),), events=events)
    assert (outcome.value, outcome.degraded, outcome.model) == ("sorry", True, "degraded")
    assert any(isinstance(e, DegradedAnswerServed) for e in seen)


def test_degraded_cached_answer_replays_the_last_good_answer(clock):
    a = Model("a", Scripted(clock, ["fresh", error(503)]))
    cache = CachedAnswer(key=lambda request: "same")
    fallback = Fallback([a])
    first = route(clock, fallback, outer=(Degrade(cache),))
    second = route(clock, fallback, outer=(Degrade(cache),))
    assert (first.value, first.degraded) == ("fresh", False)
    assert (second.value, second.degraded) == ("fresh", True)


def test_degradation_does_not_hide_client_errors(clock):
    a = Model("a", Scripted(clock, [error(400)]))
    outcome = route(clock, Fallback([a]), outer=(Degrade(StaticAnswer("sorry")),))
    assert outcome.error.status == 400


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(0.0, 10.0), min_size=2, max_size=6),
    seed=st.integers(0, 10_000),
)
def test_weighted_shares_follow_weights_and_zero_weight_gets_none(weights, seed):
    class W:
        def __init__(self, i, w):
            self.name, self.priority, self._w = f"m{i}", i, w

        def weight(self):
            return self._w

    total = sum(weights)
    candidates = [W(i, w) for i, w in enumerate(weights)]
    rng = random.Random(seed)
    draws = 3000
    firsts = Counter()
    for _ in range(draws):
        order = Weighted().order(candidates, rng)
        assert all(c.weight() > 0 for c in order)
        if order:
            firsts[order[0].name] += 1
    for c in candidates:
        expected = c.weight() / total if total else 0.0
        assert firsts[c.name] / draws == pytest.approx(expected, abs=0.05)


def test_sequential_plan_orders_by_priority_stably():
    class P:
        def __init__(self, name, priority):
            self.name, self.priority = name, priority

    order = Sequential().order([P("b", 1), P("a", 0), P("c", 1)], random.Random(0))
    assert [p.name for p in order] == ["a", "b", "c"]


@settings(max_examples=25, deadline=None)
@given(
    pool=st.lists(
        st.tuples(st.floats(0.1, 10.0), st.sampled_from(["live", "isolated", "drained"])),
        min_size=2,
        max_size=5,
    ),
    seed=st.integers(0, 10_000),
)
def test_weighted_router_shares_follow_weights_and_isolated_or_drained_models_get_none(pool, seed):
    clock = FakeClock()
    upstreams = [Scripted(clock, [f"m{i}"], f"m{i}") for i in range(len(pool))]
    router = ModelRouter(
        [ModelSpec(u.name, u, weight=w) for u, (w, _) in zip(upstreams, pool, strict=True)],
        RouterConfig(plan=Weighted()),
        clock=clock,
        rng=random.Random(seed),
    )
    events = recorded(router)
    admin = AdminControls(router)
    for upstream, (_, status) in zip(upstreams, pool, strict=True):
        if status == "isolated":
            admin.isolate(upstream.name, who="test", why="incident")
        elif status == "drained":
            admin.drain(upstream.name, who="test", why="maintenance")
    draws = 1500

    async def many():
        return [await router.execute({}) for _ in range(draws)]

    outcomes = run_on(clock, many)
    live = sum(w for w, status in pool if status == "live")
    if not live:
        assert all(isinstance(o.error, NoCandidateError) for o in outcomes)
    else:
        assert all(o.ok for o in outcomes)
    assert not [e for e in events if isinstance(e, FallbackUsed)]  # excluded ones are not even tried
    served = Counter(o.model for o in outcomes)
    for upstream, (weight, status) in zip(upstreams, pool, strict=True):
        if status != "live":
            assert upstream.calls == [] and served[upstream.name] == 0, status
            continue
        share = weight / live
        tolerance = 5 * math.sqrt(share * (1 - share) / draws) + 0.005  # 5 sigma: no false alarms
        assert served[upstream.name] / draws == pytest.approx(share, abs=tolerance)
        assert len(upstream.calls) == served[upstream.name]
