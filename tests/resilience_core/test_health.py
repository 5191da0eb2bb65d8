import itertools
import random

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


def test_an_unhealthy_model_is_probed_at_the_fast_pace_and_probes_are_spread_by_jitter(clock):
    import random

    failing = Scripted(clock, [RuntimeError("down")])
    steady = Scripted(clock, ["ok"])
    checker = HealthChecker(
        {"down": lambda: failing(None), "up": lambda: steady(None)},
        interval=30.0,
        fast_interval=2.0,
        jitter=0.1,
        rng=random.Random(1),
        clock=clock,
        thresholds=HealthThresholds(unhealthy_after=1),
    )

    async def run_for_a_while():
        checker.start()
        await clock.sleep(61.0)
        await checker.stop()

    run_on(clock, run_for_a_while)
    assert len(failing.calls) >= 25  # every ~2 s once it is unhealthy
    assert 2 <= len(steady.calls) <= 3  # every ~30 s while healthy
    gaps = [b - a for a, b in zip(steady.calls, steady.calls[1:], strict=False)]
    assert all(27.0 <= gap <= 33.0 for gap in gaps) and any(gap != 30.0 for gap in gaps)


def test_a_hurried_model_is_probed_within_the_fast_interval_not_at_its_next_turn(clock):
    """Its circuit opened 5 s after a probe: its next turn was 25 s away, longer than most
    outages; hurried, it is probed within 4 s, then at the fast pace while `urgent` holds."""
    steady = Scripted(clock, ["ok"])
    open_circuit = {"m": False}
    checker = HealthChecker(
        {"m": lambda: steady(None)},
        interval=30.0,
        fast_interval=2.0,
        clock=clock,
        first_after=0.0,
        urgent=lambda model: open_circuit[model],
    )

    async def open_at_five():
        checker.start()
        await clock.sleep(5.0)
        open_circuit["m"] = True
        checker.hurry("m")
        checker.hurry("not-a-model")  # ignored
        await clock.sleep(10.0)
        await checker.stop()

    run_on(clock, open_at_five)
    assert steady.calls[0] == 0.0
    assert 5.0 < steady.calls[1] <= 9.0  # noticed within one fast interval, probed within another
    assert len(steady.calls) >= 5  # every 1-2 s from then on


def test_a_model_flapping_at_the_fast_pace_is_not_probed_only_in_its_outages(clock):
    """Down for the first half of every second, probed at most a second apart: probes a steady
    second apart would all land in outages and keep it unhealthy while it is back half the time."""

    async def flapping() -> str:
        if clock.now() % 1.0 < 0.5:
            raise RuntimeError("down")
        return "ok"

    checker = HealthChecker(
        {"m": flapping},
        interval=30.0,
        fast_interval=1.0,
        jitter=0.0,
        first_after=0.0,
        rng=random.Random(3),
        clock=clock,
        thresholds=HealthThresholds(unhealthy_after=1, recover_after=1),
    )
    seen: list[str] = []
    checker.on_alert(lambda change: seen.append(change.to_state))

    async def run_for_a_while():
        checker.start()
        await clock.sleep(10.0)
        await checker.stop()

    run_on(clock, run_for_a_while)
    assert seen[:2] == ["unhealthy", "healthy"], seen


def test_healthy_models_due_within_the_batch_are_probed_in_one_wake_up(clock):
    """500 models every 30 s would wake the loop 17 times a second; each wake-up costs about
    as much as a probe. Batched, a probe goes out up to `batch` s early, never late."""
    probed: dict[str, list[float]] = {f"m{i}": [] for i in range(40)}

    def probe_of(model: str):
        async def probe() -> str:
            probed[model].append(clock.now())
            return "ok"

        return probe

    def instants(batch: float) -> set[float]:
        for times in probed.values():
            times.clear()
        checker = HealthChecker(
            {m: probe_of(m) for m in probed},
            interval=10.0,
            jitter=0.1,
            batch=batch,
            rng=random.Random(5),
            clock=clock,
        )

        async def run_for_a_while():
            checker.start()
            await clock.sleep(40.0)
            await checker.stop()

        run_on(clock, run_for_a_while)
        for times in probed.values():
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert all(9.0 - batch <= gap <= 11.0 for gap in gaps), gaps
        return {t for times in probed.values() for t in times}

    assert len(instants(0.0)) >= 150  # every probe on its own wake-up
    assert len(instants(1.0)) <= 45  # about one a second


def test_with_recover_after_one_good_probe_brings_a_model_back(clock):
    probe = Scripted(clock, [RuntimeError("down"), RuntimeError("down"), RuntimeError("down"), "ok"])
    checker = HealthChecker(
        {"m": lambda: probe(None)},
        clock=clock,
        thresholds=HealthThresholds(unhealthy_after=2, recover_after=1, window=10),
    )
    for _ in range(3):
        run_on(clock, checker.check_all)
    assert checker.status("m") is HealthStatus.UNHEALTHY
    run_on(clock, checker.check_all)
    assert checker.status("m") is HealthStatus.HEALTHY  # not after five more good probes


def test_a_paused_model_gets_no_probe_until_it_is_unpaused(clock):
    """An operator's isolate means no traffic at all, probes included."""
    probe = Scripted(clock, ["ok"])
    paused = {"m": False}
    checker = HealthChecker(
        {"m": lambda: probe(None)}, interval=10.0, clock=clock, paused=lambda model: paused[model]
    )

    async def isolate_then_restore():
        checker.start()
        await clock.sleep(15.0)  # probed at 0 and 10
        paused["m"] = True
        await clock.sleep(30.0)  # turns at 20, 30, 40 skipped
        paused["m"] = False
        await clock.sleep(10.0)  # probed again at 50
        await checker.stop()

    run_on(clock, isolate_then_restore)
    assert probe.calls == pytest.approx([0.0, 10.0, 50.0])
    assert checker.status("m") is HealthStatus.HEALTHY
