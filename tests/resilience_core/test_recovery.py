import random
from itertools import pairwise

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from resilience_core import (
    AutoRecovery,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitState,
    CircuitStateChanged,
    EventBus,
    ModelCallError,
    ModelRouter,
    ModelSpec,
    Pipeline,
    Restoration,
    RestorationConfig,
    RestorationStepChanged,
    RouterConfig,
    Settleable,
)
from resilience_core.testing import FakeClock
from tests.conftest import Scripted, error, recorded, run_on


def test_restoration_climbs_each_step_after_its_hold():
    events = []
    restoration = Restoration("m", RestorationConfig(steps=(0.1, 0.25, 0.5, 1.0), hold=10.0), events.append)
    restoration.start(0.0, "recovered")
    assert [restoration.share(t) for t in (0.0, 9.9, 10.0, 19.9, 20.0, 29.9, 30.0, 99.0)] == [
        0.1,
        0.1,
        0.25,
        0.25,
        0.5,
        0.5,
        1.0,
        1.0,
    ]
    assert [(e.from_share, e.to_share) for e in events] == [
        (0.0, 0.1),
        (0.1, 0.25),
        (0.25, 0.5),
        (0.5, 1.0),
    ]
    assert not restoration.active


def test_breaker_closing_after_probes_starts_restoration_and_a_failure_reopens(clock):
    events = EventBus()
    breaker = CircuitBreaker(
        "m",
        CircuitBreakerConfig(consecutive_failures=2, wait_duration=5.0, half_open_probes=1),
        emit=events.emit,
    )
    recovery = AutoRecovery(breaker, RestorationConfig(hold=10.0), emit=events.emit)
    events.subscribe(recovery.on_event, kinds=(CircuitStateChanged,))
    upstream = Scripted(clock, [error(503), error(503), "ok", error(503)])
    pipeline = Pipeline(recovery, CircuitBreakerPolicy(breaker))

    def once():
        return run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock, events=events))

    once()
    once()
    assert breaker.state is CircuitState.OPEN
    clock.advance(5.0)
    once()  # the probe succeeds
    assert breaker.state is CircuitState.CLOSED
    assert recovery.admission(clock.now()) == 0.1
    once()  # fails during restoration: straight back to open
    assert breaker.state is CircuitState.OPEN
    assert not recovery.restoration.active


def test_a_stream_cut_during_restoration_reopens_as_a_late_failure(clock):
    events = EventBus()
    config = CircuitBreakerConfig(consecutive_failures=2, wait_duration=5.0, half_open_probes=1)
    breaker = CircuitBreaker("m", config, emit=events.emit)
    recovery = AutoRecovery(breaker, RestorationConfig(hold=10.0), emit=events.emit)
    events.subscribe(recovery.on_event, kinds=(CircuitStateChanged,))
    seen: list = []
    events.subscribe(seen.append)
    stream = _Started()
    upstream = Scripted(clock, [error(503), error(503), "ok", stream])
    pipeline = Pipeline(recovery, CircuitBreakerPolicy(breaker))
    for _ in range(4):
        if breaker.state is CircuitState.OPEN:
            clock.advance(5.0)
        run_on(clock, lambda: pipeline.execute(upstream, {}, clock=clock, events=events))
    assert recovery.restoration.active and breaker.state is CircuitState.CLOSED  # the stream is still open
    stream.settle(failed=True)
    assert breaker.state is CircuitState.OPEN
    reopened = [e for e in seen if isinstance(e, CircuitStateChanged)][-1]
    assert reopened.reason == "late failure during progressive restoration"


class _Started(Settleable):
    """A stream whose first event arrived."""


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.floats(0.01, 0.99), min_size=0, max_size=5, unique=True),
    hold=st.floats(0.0, 60.0),
    reads=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=30),
    fail_at=st.one_of(st.none(), st.integers(0, 29)),
)
def test_restoration_steps_are_monotone_and_abort_resets_them(steps, hold, reads, fail_at):
    config = RestorationConfig(steps=(*sorted(steps), 1.0), hold=hold)
    events = []
    restoration = Restoration("m", config, events.append)
    restoration.start(0.0, "recovered")
    now = 0.0
    previous = restoration.share(now)
    for i, dt in enumerate(reads):
        now += dt
        if fail_at == i:
            was_active = restoration.active
            restoration.abort(now, "failure")
            assert restoration.share(now) == 1.0 and not restoration.active
            if was_active:
                assert events[-1].to_share == 0.0
            return
        share = restoration.share(now)
        assert share >= previous
        assert share in config.steps
        previous = share
    climbs = [e for e in events if isinstance(e, RestorationStepChanged)]
    assert all(e.to_share > e.from_share for e in climbs)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(0.05, 0.95), min_size=1, max_size=4, unique=True),
    hold=st.floats(0.5, 5.0),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=20),
    seed=st.integers(0, 10_000),
)
def test_restoration_through_the_router_climbs_monotonically_and_reopens_on_a_failure(
    steps, hold, gaps, seed
):
    """Outage, probe, then healthy calls `gaps` apart; then one real failure. While restoring,
    that one failure reopens the circuit (the breaker alone needs 3); once restored, it does not."""
    clock = FakeClock()
    down = True
    calls: list[float] = []

    async def primary(request):
        calls.append(clock.now())
        if down:
            raise ModelCallError("down", status=503)
        return "primary"

    config = RestorationConfig(steps=(*sorted(steps), 1.0), hold=hold)
    router = ModelRouter(
        [ModelSpec("primary", primary), ModelSpec("backup", Scripted(clock, ["backup"]), priority=1)],
        RouterConfig(
            retry=None,
            breaker=CircuitBreakerConfig(consecutive_failures=3, wait_duration=1.0, half_open_probes=1),
            restoration=config,
        ),
        clock=clock,
        rng=random.Random(seed),
    )
    handle = router.models["primary"]
    events = recorded(router)

    async def scenario():
        nonlocal down
        for _ in range(3):
            assert (await router.call({})).model == "backup"
        assert handle.breaker.state is CircuitState.OPEN
        down = False
        await clock.sleep(1.0)
        assert (await router.call({})).model == "primary"  # the probe closes the circuit
        assert handle.breaker.state is CircuitState.CLOSED
        shares = [handle.admission()]
        assert shares[0] == config.steps[0]
        for gap in gaps:
            await clock.sleep(gap)
            shares.append(handle.admission())
            await router.call({})
        assert all(a <= b for a, b in pairwise(shares)), shares
        assert set(shares) <= set(config.steps)
        restoring = handle.recovery.restoration.active
        down = True
        before = len(calls)
        for _ in range(10_000):  # no time passes: the share stays where it is
            assert (await router.call({})).model == "backup"
            if len(calls) > before:
                break
        assert len(calls) == before + 1  # one failure reached the model
        return shares[-1], restoring

    share, restoring = run_on(clock, scenario)
    climb = [e for e in events if isinstance(e, RestorationStepChanged)]
    event(f"failure while restoring: {restoring}")
    if not restoring:
        assert share == 1.0 and climb[-1].to_share == 1.0
        assert handle.breaker.state is CircuitState.CLOSED  # 1 failure < 3: the breaker's own rule
        return
    assert handle.breaker.state is CircuitState.OPEN
    assert [e.reason for e in events if isinstance(e, CircuitStateChanged)][-1] == (
        "failure during progressive restoration"
    )
    assert (climb[-1].from_share, climb[-1].to_share) == (share, 0.0)
    assert all(e.to_share > e.from_share for e in climb[:-1])
    assert not handle.recovery.restoration.active
    before = len(calls)

    async def within_the_wait():
        for _ in range(20):
            assert (await router.call({})).model == "backup"
            await clock.sleep(0.04)

    run_on(clock, within_the_wait)
    assert len(calls) == before  # back to no traffic until the next probe


def test_restoration_config_rejects_bad_steps():
    with pytest.raises(ValueError, match=r"end at 1\.0"):
        RestorationConfig(steps=(0.1, 0.5))
    with pytest.raises(ValueError, match="increase"):
        RestorationConfig(steps=(0.5, 0.2, 1.0))
