"""The router keeps its candidate order between requests while the pool stands still: every
change of the pool must still reach the very next request."""

import pytest

from resilience_core import (
    AdminControls,
    CircuitBreakerConfig,
    Context,
    FallbackUsed,
    Hedged,
    ModelCallError,
    ModelRouter,
    ModelSpec,
    RestorationConfig,
    RouterConfig,
    Sequential,
    Weighted,
)
from resilience_core.testing import FakeClock
from tests.conftest import Scripted, recorded, run_on


def pool(clock: FakeClock, plan=None, restoration=None) -> ModelRouter:
    specs = [
        ModelSpec("a", Scripted(clock, ["a"], "a")),
        ModelSpec("b", Scripted(clock, ["b"], "b"), priority=1),
    ]
    config = RouterConfig(plan=plan or Sequential(), restoration=restoration, retry=None)
    return ModelRouter(specs, config, clock=clock)


def served(clock: FakeClock, router: ModelRouter) -> str:
    return run_on(clock, lambda: router.call({})).model


def _isolate(router):
    AdminControls(router).isolate("a", who="test", why="kept order")


def _drain(router):
    router.models["a"].drained = True


def _weigh_nothing(router):
    router.models["a"].base_weight = 0.0


def _admin_weight(router):
    AdminControls(router).set_weight("a", 0.0, who="test", why="kept order")


@pytest.mark.parametrize("plan", [Sequential(), Hedged(5.0)], ids=["sequential", "hedged"])
@pytest.mark.parametrize("change", [_isolate, _drain, _weigh_nothing, _admin_weight])
def test_a_change_of_the_pool_reaches_the_next_request_and_so_does_its_undoing(clock, plan, change):
    router = pool(clock, plan)
    assert served(clock, router) == "a"
    assert served(clock, router) == "a"  # the order is kept from here on
    change(router)
    seen = recorded(router)
    assert served(clock, router) == "b"
    assert not [e for e in seen if isinstance(e, FallbackUsed)]  # "a" was no candidate at all
    AdminControls(router).restore("a", who="test", why="undo")
    router.models["a"].base_weight = 1.0
    assert served(clock, router) == "a"


def test_a_restoring_model_gets_its_share_not_the_kept_order(clock):
    config = CircuitBreakerConfig(consecutive_failures=1, wait_duration=1.0, half_open_probes=1)
    specs = [
        ModelSpec("a", Scripted(clock, ["a"], "a"), breaker=config),
        ModelSpec("b", Scripted(clock, ["b"], "b"), priority=1),
    ]
    restoration = RestorationConfig(steps=(0.5, 1.0), hold=1000.0)
    router = ModelRouter(specs, RouterConfig(restoration=restoration, retry=None), clock=clock)
    assert served(clock, router) == "a"
    handle = router.models["a"]
    handle.breaker.trip(clock.now(), "test")
    clock.advance(2.0)
    assert served(clock, router) == "a"  # the half-open probe succeeds: restoration starts at 50 %
    assert handle.restoring
    first = [served(clock, router) for _ in range(200)]
    assert 60 <= first.count("a") <= 140  # about half, not the kept "always a"


def test_a_plan_that_draws_its_order_is_asked_every_time(clock):
    router = pool(clock, Weighted())
    models = {served(clock, router) for _ in range(100)}
    assert models == {"a", "b"}


def test_a_failure_fails_over_along_the_order_kept_now_not_an_earlier_one(clock):
    """The rest of the kept order that a failed first candidate goes on to is made once per
    kept order: after the pool changed, a failure must follow the new order."""
    specs = [
        ModelSpec("a", Scripted(clock, [ModelCallError("down", status=503)], "a")),
        ModelSpec("b", Scripted(clock, ["b"], "b"), priority=1),
        ModelSpec("c", Scripted(clock, ["c"], "c"), priority=2),
    ]
    breaker = CircuitBreakerConfig(consecutive_failures=1000, minimum_calls=1000)
    router = ModelRouter(specs, RouterConfig(plan=Sequential(), retry=None, breaker=breaker), clock=clock)
    assert served(clock, router) == "b"
    assert served(clock, router) == "b"  # a's failure went on along the same kept order
    router.models["b"].drained = True
    assert served(clock, router) == "c"
    router.models["b"].drained = False
    assert served(clock, router) == "b"


def test_a_context_naming_a_model_of_its_own_gets_it_back_when_the_first_candidate_fails(clock):
    """A request with no model of its own starts on the kept order without `run`'s checks; a
    context that names one (a caller's own) takes the long way, whose failover puts that name
    back before trying the rest, even once the fast start for the kept order exists."""
    specs = [
        ModelSpec("a", Scripted(clock, [ModelCallError("down", status=503)], "a")),
        ModelSpec("b", Scripted(clock, ["b"], "b"), priority=1),
    ]
    breaker = CircuitBreakerConfig(consecutive_failures=1000, minimum_calls=1000)
    router = ModelRouter(specs, RouterConfig(plan=Sequential(), retry=None, breaker=breaker), clock=clock)
    assert served(clock, router) == "b"
    assert served(clock, router) == "b"  # through the fast start of the kept order
    ctx = Context({}, None)
    ctx.model = "outer"
    outcome = run_on(clock, lambda: router.fallback.run(ctx))
    assert outcome.model == "b" and ctx.model == "outer"
