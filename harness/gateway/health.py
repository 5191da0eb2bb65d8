"""Active health checks: each group's models probed with a one-token chat request on the
core's `HealthChecker` (jittered, faster while a model is unhealthy or its circuit is open), so
an idle fallback's death is found before a user request needs it. A change is told to the
router (an unhealthy model is tried only after the healthy ones), the audit trail, the
dashboard's feed, the log, and an optional webhook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from harness.gateway.config import HealthPolicy
from harness.gateway.probe_client import ProbeClient
from harness.gateway.upstream import Upstream
from harness.gateway.upstream_client import UpstreamSession
from resilience_core import (
    SLOW_HOLD,
    CircuitState,
    CircuitStateChanged,
    Clock,
    EventBus,
    HealthChanged,
    HealthChecker,
    HealthStatus,
    HealthThresholds,
    LoopClock,
    ModelHeld,
    ModelRouter,
)

log = logging.getLogger("harness.gateway.health")

PROBE = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1, "stream": False}
PROBE_BATCH = 1.0
"""Seconds within which healthy models' probes go out together: a second early on a 30 s
interval changes nothing, and one wake-up for many probes cut their CPU at 500 models by half."""

Probe = Callable[[], Awaitable[Any]]


def through_upstream(upstream: Upstream) -> Probe:
    """The probe as a request like any other, through the upstream's session (the simulation
    gives the gateway a session of its own making: its probes must take that road too)."""
    return partial(upstream, PROBE)


def own_connection(upstream: Upstream) -> ProbeClient:
    """The probe over a kept connection of its own, at a fraction of an aiohttp request's CPU
    (`probe_client`): what a gateway that owns its HTTP session probes with."""
    return ProbeClient(upstream.url, upstream.headers, {**PROBE, "model": upstream.model})


class GroupHealth:
    """The health checks of one group's models."""

    def __init__(
        self,
        router: ModelRouter,
        upstreams: dict[str, Upstream],
        policy: HealthPolicy,
        session: UpstreamSession | None,
        record: Callable[[HealthChanged], None],
        first_after: float | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        probe_with: Callable[[Upstream], Probe] | None = None,
    ) -> None:
        probe_with = probe_with if probe_with is not None else through_upstream
        self.router = router
        self.policy = policy
        self.session = session
        self.record = record
        self.events = EventBus()
        self._sends = {label: probe_with(upstream) for label, upstream in upstreams.items()}
        self.checker = HealthChecker(
            {label: self._probe(label, send) for label, send in self._sends.items()},
            interval=policy.interval,
            fast_interval=policy.unhealthy_interval,
            jitter=policy.jitter,
            thresholds=HealthThresholds(probe_timeout=policy.timeout, unhealthy_after=2, recover_after=1),
            events=self.events,
            urgent=self._circuit_open,
            paused=self._isolated,
            first_after=first_after,
            batch=PROBE_BATCH,
            clock=clock if clock is not None else LoopClock(),
            rng=rng,
        )
        self.events.subscribe(self._changed, kinds=(HealthChanged,))
        router.events.subscribe(self._circuit_changed, kinds=(CircuitStateChanged,))
        router.events.subscribe(self._held, kinds=(ModelHeld,))
        self._posts: set[asyncio.Task[None]] = set()

    def _probe(self, label: str, send: Probe) -> Probe:
        """A probe that also ends a backed-off circuit wait when the model answers it, and a
        backed-off slow hold when it answers as quickly as the pool usually does
        (`ModelRouter.probe_answered`): each time the model fails a caller
        again the breaker waits (and the hold lasts) longer, so callers' requests stop paying
        for a model that stays broken or slow, and the health probe, which no caller waits on,
        is what finds the model back, within `unhealthy_interval` instead of the longer wait."""
        router = self.router
        handle = router.models[label]
        metrics = handle.metrics
        clock = router.clock

        async def probe() -> None:
            started = clock.now()
            await send()  # raises on any failure: the checker counts it
            now = clock.now()
            metrics.probed(now - started)
            router.probe_answered(label, now - started)
            breaker = handle.breaker
            if breaker.state is CircuitState.OPEN and breaker.failed_probes:
                breaker.expedite(now, "a health probe answered")  # the router reorders on its event

        return probe

    def _isolated(self, label: str) -> bool:
        """An operator isolated it: not even a probe goes there until it is restored."""
        return self.router.models[label].breaker.state is CircuitState.ISOLATED

    def _circuit_changed(self, change: CircuitStateChanged) -> None:
        if change.to_state == CircuitState.OPEN.value:
            self.checker.hurry(change.model)

    def _held(self, held: ModelHeld) -> None:
        if held.reason == SLOW_HOLD and held.model is not None:
            self.checker.hurry(held.model)

    def _circuit_open(self, label: str) -> bool:
        """Probed at the fast pace: its circuit is not closed, or it is held as slow (a probe
        that answers in time ends the hold)."""
        handle = self.router.models[label]
        holds = handle.holds
        return handle.breaker.state is not CircuitState.CLOSED or (
            holds is not None and holds.on_trial and handle.held_until > self.router.clock.now()
        )

    def _changed(self, change: HealthChanged) -> None:
        assert change.model is not None
        self.router.set_health(change.model, change.to_state != HealthStatus.UNHEALTHY)
        self.record(change)
        log.warning(
            "health: %s %s -> %s (%s)", change.model, change.from_state, change.to_state, change.reason
        )
        if self.policy.webhook and self.session is not None:
            task = asyncio.get_running_loop().create_task(self._post(change))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)

    async def _post(self, change: HealthChanged) -> None:
        body = {
            "model": change.model,
            "from": change.from_state,
            "to": change.to_state,
            "reason": change.reason,
        }
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, ValueError):
            async with asyncio.timeout(5), self.session.post(str(self.policy.webhook), json=body):
                pass

    def start(self) -> None:
        self.checker.start()

    async def stop(self) -> None:
        await self.checker.stop()
        for send in self._sends.values():
            if isinstance(send, ProbeClient):
                send.close()
        for task in list(self._posts):
            task.cancel()

    def statuses(self) -> dict[str, str]:
        return {model: status.value for model, status in self.checker.statuses().items()}
