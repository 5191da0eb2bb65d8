import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilience_core import (
    AutoRecovery,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitState,
    EventBus,
    Pipeline,
    Restoration,
    RestorationConfig,
    RestorationStepChanged,
)
from tests.conftest import Scripted, error, run_on


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
    events.subscribe(recovery.on_event)
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


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.floats(0.01, 0.99), min_size=0, max_size=5, unique=True),
    hold=st.floats(0.0, 60.0),
    reads=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=30),
    fail_at=st.one_of(st.none(), st.integers(0, 29)),
)
def test_restoration_steps_are_monotone_and_reset_on_failure(steps, hold, reads, fail_at):
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


def test_restoration_config_rejects_bad_steps():
    with pytest.raises(ValueError, match=r"end at 1\.0"):
        RestorationConfig(steps=(0.1, 0.5))
    with pytest.raises(ValueError, match="increase"):
        RestorationConfig(steps=(0.5, 0.2, 1.0))
