"""The gateway's health probes and its breakers: a circuit that opened (or a model held as slow)
gets fast-paced probes at once, and a health probe the model answers ends a wait that failed
probes made longer (a slow hold: when it answers as quickly as the pool usually does)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.gateway.config import HealthPolicy
from harness.gateway.health import GroupHealth
from resilience_core import (
    CircuitBreakerConfig,
    CircuitState,
    ModelRouter,
    ModelSpec,
    RouterConfig,
    SlowFirstAnswer,
)
from resilience_core.circuit import NO_PERMIT


async def _never_called(request: Any) -> Any:
    raise AssertionError("the test drives the breaker by hand")


def _router() -> ModelRouter:
    breaker = CircuitBreakerConfig(
        consecutive_failures=1, wait_duration=1.0, half_open_probes=1, wait_backoff=2.0, max_wait_duration=8.0
    )
    return ModelRouter([ModelSpec("m", _never_called)], RouterConfig(breaker=breaker))


def _health(router: ModelRouter, answers: bool) -> GroupHealth:
    def probe_with(upstream: Any) -> Any:
        async def send() -> None:
            if not answers:
                raise ConnectionResetError("reset")

        return send

    return GroupHealth(
        router,
        {"m": object()},
        HealthPolicy(),
        None,
        record=lambda change: None,
        probe_with=probe_with,  # type: ignore[dict-item]
    )


def _open_after_a_failed_probe(router: ModelRouter) -> None:
    breaker = router.models["m"].breaker
    now = router.clock.now()
    permit = breaker.try_acquire(now)
    breaker.on_result(permit, failed=True, duration=0.0, now=now)  # trips
    probe = breaker.try_acquire(now + 1.0)
    breaker.on_result(probe, failed=True, duration=0.0, now=now + 1.0)  # the probe fails: 2 s now
    assert breaker.state is CircuitState.OPEN and breaker.wait == 2.0


def test_a_health_probe_the_model_answers_ends_a_backed_off_wait():
    async def scenario() -> None:
        router = _router()
        health = _health(router, answers=True)
        _open_after_a_failed_probe(router)
        await health.checker._probes["m"]()
        breaker = router.models["m"].breaker
        assert breaker.state is CircuitState.HALF_OPEN
        assert breaker.try_acquire(router.clock.now()) != NO_PERMIT  # a caller's probe may go now

    asyncio.run(scenario())


def test_a_failing_health_probe_leaves_the_wait_as_it_is():
    async def scenario() -> None:
        router = _router()
        health = _health(router, answers=False)
        _open_after_a_failed_probe(router)
        with pytest.raises(ConnectionResetError):
            await health.checker._probes["m"]()
        assert router.models["m"].breaker.state is CircuitState.OPEN

    asyncio.run(scenario())


def test_a_circuit_that_opens_hurries_its_models_health_probe():
    async def scenario() -> None:
        router = _router()
        health = _health(router, answers=True)
        breaker = router.models["m"].breaker
        now = router.clock.now()
        breaker.on_result(breaker.try_acquire(now), failed=True, duration=0.0, now=now)
        assert health.checker._hurried == {"m"}

    asyncio.run(scenario())


def test_a_model_held_as_slow_is_probed_at_once_and_a_quick_probe_ends_the_hold():
    async def scenario() -> None:
        slow = SlowFirstAnswer(hold=3.0, hold_backoff=2.0, max_hold=8.0)
        specs = [ModelSpec("m", _never_called), ModelSpec("n", _never_called, priority=1)]
        router = ModelRouter(specs, RouterConfig(slow_first_answer=slow))
        health = _health(router, answers=True)
        for handle in router.models.values():
            handle.metrics.probed(0.05)  # the pool's usual first answer: 50 ms
        holds = router.models["m"].holds
        assert holds is not None
        now = router.clock.now()
        holds._hold_slow(now, now, slow)  # cut at the cap: held 3 s
        assert health.checker._hurried == {"m"}
        await health.checker._probes["m"]()  # answers at once: quicker than 50 ms
        assert "m" not in router.held and holds.on_trial

    asyncio.run(scenario())
