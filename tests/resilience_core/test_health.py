import pytest

from resilience_core import HealthChanged, HealthChecker, HealthStatus, HealthThresholds
from tests.conftest import Scripted, run_on


def test_probes_move_a_model_through_degraded_and_unhealthy_with_alerts(clock):
    probe = Scripted(clock, ["ok", (3.0, "slow"), RuntimeError(), RuntimeError(), RuntimeError()])
    checker = HealthChecker(
        {"m": lambda: probe(None)},
        clock=clock,
        thresholds=HealthThresholds(
            latency_degraded=2.0,
            error_rate_degraded=0.9,
            error_rate_unhealthy=1.0,
            unhealthy_after=3,
        ),
    )
    alerts = []
    checker.on_alert(alerts.append)

    async def five():
        return [await checker.check("m") for _ in range(5)]

    statuses = run_on(clock, five)
    assert statuses == ["healthy", "degraded", "degraded", "degraded", "unhealthy"]
    assert [(a.from_state, a.to_state) for a in alerts] == [
        ("healthy", "degraded"),
        ("degraded", "unhealthy"),
    ]
    assert all(isinstance(a, HealthChanged) for a in alerts)


def test_per_model_thresholds_override_the_default(clock):
    fast = Scripted(clock, [(0.5, "ok")])
    checker = HealthChecker(
        {"strict": lambda: fast(None), "lenient": lambda: fast(None)},
        clock=clock,
        per_model={"strict": HealthThresholds(latency_degraded=0.1, latency_unhealthy=5.0)},
    )
    run_on(clock, checker.check_all)
    assert checker.statuses() == {"strict": HealthStatus.DEGRADED, "lenient": HealthStatus.HEALTHY}


def test_run_probes_every_interval(clock):
    probe = Scripted(clock, ["ok"])
    checker = HealthChecker({"m": lambda: probe(None)}, interval=30.0, clock=clock)

    async def run_for_a_while():
        checker.start()
        await clock.sleep(95.0)
        await checker.stop()

    run_on(clock, run_for_a_while)
    assert probe.calls == pytest.approx([0.0, 30.0, 60.0, 90.0])


def test_a_failing_alert_callback_does_not_stop_checking(clock):
    checker = HealthChecker(
        {"m": lambda: Scripted(clock, [RuntimeError()])(None)},
        clock=clock,
        thresholds=HealthThresholds(unhealthy_after=1),
    )

    def broken(change):
        raise ValueError("alert sink down")

    checker.on_alert(broken)
    assert run_on(clock, lambda: checker.check("m")) is HealthStatus.UNHEALTHY


def test_a_probe_that_hangs_fails_at_its_timeout_in_virtual_time(clock):
    from resilience_core.testing import never_answers

    checker = HealthChecker(
        {"m": lambda: never_answers(None)},
        clock=clock,
        thresholds=HealthThresholds(unhealthy_after=1, probe_timeout=2.0),
    )
    assert run_on(clock, lambda: checker.check("m")) is HealthStatus.UNHEALTHY
    assert clock.now() == pytest.approx(2.0)
