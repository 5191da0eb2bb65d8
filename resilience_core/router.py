"""ModelRouter: the policies composed over a pool of models behind one `call`."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .availability import Holds, RateLimitHold, SlowFirstAnswer
from .bulkhead import Bulkhead, BulkheadConfig
from .circuit.breaker import CircuitBreaker, CircuitBreakerConfig
from .circuit.policy import CircuitBreakerPolicy
from .circuit.state import CircuitState
from .clock import SYSTEM_CLOCK, Clock
from .context import Call, Context
from .deadline import Deadline, Timeout
from .degradation import Degrade, DegradedSource
from .events import CircuitStateChanged, EventBus, ModelHeld, RestorationStepChanged, WeightChanged
from .fallback import EARLY_PROBE_GAP, PROBE_WAIT, CandidateSource, Fallback
from .metrics import MetricsCollector, MetricsPolicy, ModelMetrics
from .outcome import Outcome
from .policy import Pipeline, Policy
from .recovery import AutoRecovery, RestorationConfig
from .retry import Retry, RetryBudget, RetryConfig
from .selection import Candidate, Plan, Sequential

DEFAULT_DEADLINE = 30.0
DEFAULT_LATENCY_TARGET = 1.0
CAP_EVERY = 32
"""Requests between two computations of the soft cap on time to first answer. Each one reads
every model's figures, which drains the calm of the model in use: at 16 that was twice as
often as the calm fills (`_calm.LOG_MOST`), ~25 opcodes a 5-model request."""
POOL_CHANGES = (CircuitStateChanged, RestorationStepChanged, WeightChanged)
"""The events after which the router orders its candidates afresh (retries and hedges do not
change who may take traffic)."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model in the pool: how to call it and its per-model limits.

    Usage::

        ModelSpec("gpt-a", call_gpt_a, priority=0, timeout=5.0, bulkhead=BulkheadConfig(32, 64))
    """

    name: str
    call: Call
    priority: int = 0
    weight: float = 1.0
    timeout: float | None = None
    bulkhead: BulkheadConfig | None = None
    breaker: CircuitBreakerConfig | None = None
    """None uses the router's default breaker config."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("ModelSpec.name must not be empty")
        if self.weight < 0:
            raise ValueError(f"ModelSpec.weight must be >= 0 (model {self.name})")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"ModelSpec.timeout must be > 0 (model {self.name})")


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """The policies applied to every request and every model.

    Outermost first: deadline, degradation, fallback by `plan`; then per model: retry (with a
    budget), recovery, breaker, bulkhead, timeout, metrics. `None` switches a piece off.

    Usage::

        RouterConfig(deadline=10.0, plan=Hedged(0.5), degraded=StaticAnswer("busy, try later"))
    """

    deadline: float | None = DEFAULT_DEADLINE
    min_attempt: float = 0.0
    plan: Plan = field(default_factory=Sequential)
    retry: RetryConfig | None = field(default_factory=RetryConfig)
    retry_budget: float | None = 0.2
    """Retries allowed as a share of calls per model; None = unlimited."""
    breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    restoration: RestorationConfig | None = field(default_factory=RestorationConfig)
    degraded: DegradedSource | None = None
    latency_target: float = DEFAULT_LATENCY_TARGET
    """Weighted routing scales a model down by `latency_target / ewma_latency` when slower."""
    metrics_window: int = 200
    rate_limits: RateLimitHold | None = None
    """Hold a rate-limited model instead of counting its 429 as a failure; None: no holds."""
    slow_first_answer: SlowFirstAnswer | None = None
    """Cut a candidate slow to its first answer while others remain; None: no soft cap."""


@dataclass(frozen=True, slots=True)
class RoutedAnswer:
    """A successful answer and how it was obtained."""

    value: Any
    model: str
    attempts: int
    degraded: bool


class ModelHandle:
    """One model's live state inside the router: breaker, metrics, recovery, weight, drain."""

    def __init__(
        self,
        spec: ModelSpec,
        config: RouterConfig,
        metrics: ModelMetrics,
        events: EventBus,
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
        holder: Any = None,
    ) -> None:
        self.name = spec.name
        self.priority = spec.priority
        self.call = spec.call
        self._on_change = on_change
        """Told when drain or weight change: the router keeps its candidate order until then."""
        self._base_weight = spec.weight
        self._drained = False
        self.unhealthy = False
        """Set by health checks: tried only after every healthy model (see `admission`)."""
        self.held_until = 0.0
        """Held (rate limited or slow) until then: a reserve meanwhile (see `admission`)."""
        self.early_probe_failed_at = -math.inf
        """When panic mode last probed this model and the probe failed (see `probe_early`)."""
        self.metrics = metrics
        self._clock = clock
        self._latency_target = config.latency_target
        self.breaker = CircuitBreaker(spec.name, spec.breaker or config.breaker, emit=events.emit)
        self.recovery = (
            AutoRecovery(self.breaker, config.restoration, emit=events.emit)
            if config.restoration is not None
            else None
        )
        self._restoration = self.recovery.restoration if self.recovery is not None else None
        self.bulkhead = Bulkhead(spec.bulkhead, spec.name) if spec.bulkhead is not None else None
        policies: list[Policy] = []
        if config.retry is not None:
            budget = RetryBudget(config.retry_budget) if config.retry_budget is not None else None
            policies.append(Retry(config.retry, budget=budget))
        if self.recovery is not None:
            policies.append(self.recovery)
        self.holds: Holds | None = None
        """Its hold guard (rate limited, or slow), when the router holds models."""
        if (config.rate_limits is not None or config.slow_first_answer is not None) and holder is not None:
            self.holds = Holds(spec.name, holder, config.rate_limits, config.slow_first_answer)
            policies.append(self.holds)
        policies.append(CircuitBreakerPolicy(self.breaker))
        if self.bulkhead is not None:
            policies.append(self.bulkhead)
        if spec.timeout is not None:
            policies.append(Timeout(spec.timeout))
        policies.append(MetricsPolicy(metrics))
        self.pipeline = Pipeline(*policies)
        self.run: Callable[[Context], Awaitable[Outcome]] = self.pipeline.run
        """One attempt sequence on this model: the pipeline's entry itself, no wrapper call."""
        self.honours_failover = self.pipeline.honours_failover
        """The fallback may hand its rest to this model's engine (see `Context.failover`)."""

    @property
    def drained(self) -> bool:
        return self._drained

    @drained.setter
    def drained(self, value: bool) -> None:
        self._drained = value
        self._on_change()

    @property
    def base_weight(self) -> float:
        return self._base_weight

    @base_weight.setter
    def base_weight(self, value: float) -> None:
        self._base_weight = value
        self._on_change()

    @property
    def restoring(self) -> bool:
        restoration = self._restoration
        return restoration is not None and restoration.step is not None

    @property
    def available(self) -> bool:
        """May take new traffic: not drained, not isolated, weight above zero."""
        return not self.drained and self.base_weight > 0 and self.breaker.state is not CircuitState.ISOLATED

    def weight(self) -> float:
        """Base weight scaled by live success (EWMA error) and speed (EWMA latency vs target)."""
        metrics = self.metrics
        factor = (1.0 - metrics.ewma_error) ** 2
        latency = metrics.ewma_latency
        if latency is not None and latency > self._latency_target:
            factor *= self._latency_target / latency
        return self.base_weight * factor

    def refuses_until(self) -> float:
        """Until when its open circuit turns every call away (-inf when it is not open)."""
        breaker = self.breaker
        if breaker.state is CircuitState.OPEN:
            return breaker.opened_at + breaker.wait
        return -math.inf

    def admission(self) -> float:
        """Share of requests that may try this model first: none while its open circuit would
        refuse them or health checks call it unhealthy (it is kept as a last reserve, so
        requests meet the live models first instead of a refusal per dead one: five dead
        models of fifty cost each request five refusals and a quarter more gateway CPU),
        its restoration step while it climbs back."""
        now = self._clock.now()
        if self.unhealthy or self.held_until > now or self.refuses_until() > now:
            return 0.0
        return self._restoration_share(now)

    def _restoration_share(self, now: float) -> float:
        restoration = self._restoration
        return 1.0 if restoration is None else restoration.share(now)

    def state(self) -> dict[str, Any]:
        snap = self.metrics.snapshot()
        return {
            "model": self.name,
            "circuit": self.breaker.state.value,
            "drained": self.drained,
            "weight": self.base_weight,
            "effective_weight": self.weight(),
            "restoration_share": self._restoration_share(self._clock.now()) if not self.unhealthy else None,
            "unhealthy": self.unhealthy,
            "calls": snap.calls,
            "error_rate": snap.error_rate,
            "p50": snap.p50,
            "p99": snap.p99,
        }


class ModelRouter:
    """Routes each request over a pool of models with every resilience policy applied.

    Usage::

        router = ModelRouter([ModelSpec("a", call_a), ModelSpec("b", call_b, priority=1)])
        answer = await router.call({"messages": [...]})
        answer.value, answer.model, answer.attempts, answer.degraded
    """

    def __init__(
        self,
        models: Sequence[ModelSpec],
        config: RouterConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        events: EventBus | None = None,
    ) -> None:
        if not models:
            raise ValueError("ModelRouter needs at least one model")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate model names: {sorted({n for n in names if names.count(n) > 1})}")
        self.config = config if config is not None else RouterConfig()
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.events = events if events is not None else EventBus()
        self.metrics = MetricsCollector(window=self.config.metrics_window, state_of=self._circuit_of)
        self.models: dict[str, ModelHandle] = {
            spec.name: ModelHandle(
                spec, self.config, self.metrics.model(spec.name), self.events, clock, self._pool_changed, self
            )
            for spec in models
        }
        self._handles = tuple(self.models.values())
        self.events.subscribe(self._pool_changed, kinds=POOL_CHANGES)
        for handle in self._handles:
            if handle.recovery is not None:
                self.events.subscribe(handle.recovery.on_event, kinds=(CircuitStateChanged,))
        self.held: dict[str, float] = {}
        """Models held (rate limited) and until when, on the router's clock."""
        self.fallback = _PoolFallback(self._candidates, self.config.plan, self._handles, self)
        seconds = self.config.deadline
        self.deadline = Deadline(seconds, self.config.min_attempt) if seconds is not None else None
        """Outermost of all: applied as each request's context is made (see `execute`) rather
        than as a pipeline layer, which would cost every request a lambda and a call more."""
        outer: list[Policy] = []
        if self.config.degraded is not None:
            outer.append(Degrade(self.config.degraded))
        self.pipeline = Pipeline(*outer, terminal=self.fallback.run)
        self._run = self.pipeline.run
        self._prototype = Context(None, _no_direct_call, clock=clock, rng=self.rng, events=self.events)
        """Each request's context is forked from it: cheaper than building one from keywords.
        It carries the deadline's `min_attempt`, so `execute` only has the budget to apply."""
        if self.deadline is not None:
            self._prototype.min_attempt = self.deadline.min_attempt

    def _candidates(self, ctx: Context) -> list[ModelHandle]:
        usable = [handle for handle in self._handles if handle.available]
        if self.held and self.all_held(self.clock.now()):
            return []  # every model asked not to be asked now: the request waits (see `rest`)
        return usable

    def hold(self, model: str, until: float, reason: str = "") -> None:
        """Hold `model` until `until` (rate limited, or slow): while any model is free it is
        tried only after those (as a reserve); when every model is held, requests wait for the
        first one back, if their deadline allows. A new hold is told (`ModelHeld`): health
        checks probe a model held as slow at their fast pace, to end the hold."""
        if until > self.held.get(model, 0.0):
            fresh = model not in self.held
            self.held[model] = until
            self.models[model].held_until = until
            self.fallback.changed()
            if fresh:
                self.events.emit(ModelHeld(self.clock.now(), model, until, reason))

    def set_health(self, model: str, healthy: bool) -> None:
        """What active health checks found: an unhealthy model is tried only after the healthy
        ones, so an idle model's death is not discovered by the request that needs it."""
        handle = self.models[model]
        if handle.unhealthy == healthy:
            handle.unhealthy = not healthy
            self.fallback.changed()

    def all_held(self, now: float) -> bool:
        """Every model that may take traffic is held (a request would have to wait)."""
        held = self.held
        return bool(held) and all(held.get(h.name, 0.0) > now for h in self._handles if h.available)

    def release_holds(self, now: float) -> None:
        """Forget holds that have ended; the kept order is redone if any did."""
        ended = [model for model, until in self.held.items() if until <= now]
        for model in ended:
            del self.held[model]
            self.models[model].held_until = 0.0
        if ended:
            self.fallback.changed()

    def probe_answered(self, model: str, seconds: float) -> bool:
        """A health probe, which no caller waits on, found `model` answering in `seconds`: a
        model held as slow is let back on trial at once (one request at a time, until answers
        in time come in a row) when the probe was as quick as the pool usually is (within the
        fastest model's bound: smoothed time + 4 deviations). Held slow twice, a model is held
        6 s: in `latency-spike` the spike had been over for 3 s when the hold ended, and
        recovery took 7 s instead of 4. Within the cap alone was too lax: a model whose
        answers take 0 to 300 ms extra answers a third of its probes within it, and each
        early end cost a few slow answers (`jitter`: 9-10 in its fault window, not 5).
        Whether the hold ended."""
        handle = self.models[model]
        holds = handle.holds
        if holds is None or not holds.on_trial or model not in self.held:
            return False
        bound = self.fastest_bound()
        if bound is None or seconds > bound:
            return False
        self.release_hold(model)
        return True

    def fastest_bound(self) -> float | None:
        """The quickest first-answer bound among the models that may take traffic (smoothed
        time + 4 deviations); None before any has answered."""
        bounds = [
            b for h in self._handles if h.available and (b := h.metrics.first_answer_bound()) is not None
        ]
        return min(bounds) if bounds else None

    def release_hold(self, model: str) -> None:
        """Forget `model`'s hold now, whenever it was to end (an operator's restore)."""
        if self.held.pop(model, None) is not None:
            self.models[model].held_until = 0.0
            self.fallback.changed()

    def _pool_changed(self, event: object = None) -> None:
        """Drop the kept candidate order: a breaker moved, a restoration stepped, a weight or a
        drain flag changed (rare, and cheap to redo)."""
        self.fallback.changed()

    def _circuit_of(self, name: str) -> str:
        return self.models[name].breaker.state.value

    def execute(self, request: Any, *, deadline: float | None = None) -> Awaitable[Outcome]:
        """Route `request`; the outcome is a value (never raises for upstream failures), its
        `attempts` the upstream calls made for it (the fallback totals them).

        `deadline` (absolute, on this router's clock) is a budget the caller already holds, e.g.
        across a chain of routers: the router's own deadline can only narrow it. The budget,
        the models' order and the first model's soft cap are fixed now, when it is called:
        await it (or make it a task) at once rather than keeping it for later.
        """
        ctx = self._prototype.fork(None, _no_direct_call)
        ctx.request = request
        now = ctx.clock.now()
        budget = self.deadline
        if budget is not None:  # `budget.narrow(ctx)`, inline (min_attempt came with the fork)
            limit = now + budget.seconds
            ctx.deadline = limit if deadline is None or limit < deadline else deadline
        elif deadline is not None:
            ctx.deadline = deadline
        if self.held:  # nothing to pay while nobody is rate limited
            self.release_holds(now)
        fallback = self.fallback
        if fallback.kept is not None and fallback.kept_until <= now:
            fallback.changed()
        return self._run(ctx)

    async def call(self, request: Any) -> RoutedAnswer:
        """Route `request` and return the answer, or raise the failure."""
        outcome = await self.execute(request)
        if outcome.error is not None:
            raise outcome.error
        return RoutedAnswer(outcome.value, outcome.model or "?", outcome.attempts, outcome.degraded)

    def state(self) -> list[dict[str, Any]]:
        """Every model's circuit, weight, restoration share and rolling figures."""
        return [handle.state() for handle in self.models.values()]

    def describe(self) -> list[str]:
        """The composition a request meets, outermost first: the router's own layers, then the
        first model's pipeline (`describe_models` lists every model's)."""
        first = next(iter(self.models.values()))
        outermost = [self.deadline.describe()] if self.deadline is not None else []
        return [*outermost, *self.pipeline.describe(), self.fallback.describe(), *first.pipeline.describe()]

    def describe_models(self) -> dict[str, dict[str, Any]]:
        """Every model's pipeline, outermost first, and how the engine runs it."""
        return {
            name: {"pipeline": handle.pipeline.describe(), "engine": handle.pipeline.engine}
            for name, handle in self.models.items()
        }


class _PoolFallback(Fallback):
    """The router's fallback: keeps its candidate order while the pool stands still.

    Ordering costs a request five calls. With a plan that keeps its order and no model
    restoring (a restoring model's share moves with time), the order changes only when the
    pool does, and the router says when: on every event of its bus (breaker transitions,
    restoration steps, weight changes) and when a model is drained or reweighted.
    """

    def __init__(
        self, source: CandidateSource, plan: Plan, handles: Sequence[ModelHandle], router: ModelRouter
    ) -> None:
        super().__init__(source, plan)
        self._handles = handles
        self._keeps_order = bool(getattr(plan, "keeps_order", False))
        self._router = router
        self._slow = router.config.slow_first_answer
        self.waits_out_holds = router.config.rate_limits is not None or self._slow is not None
        self.kept_until = math.inf
        """When the kept order goes stale by itself (an open circuit's wait ends). The router
        checks it, and releases ended holds, as it makes each request's context (`execute`):
        this class's `run` is `Fallback.run` itself, no frame of its own."""

    def rest(self, ctx: Context) -> float | None:
        held = self._router.held
        if not held:
            return None
        now = ctx.clock.now()
        usable = [h for h in self._handles if h.available]
        if not usable or any(held.get(h.name, 0.0) <= now for h in usable):
            return None
        return max(0.0, min(held[h.name] for h in usable) - now)

    def probe_early(self, ctx: Context, refused: Sequence[str]) -> str | None:
        """Panic mode, as Envoy's: when no model answered a request and some turned it away
        with an open circuit, one of those is tried now instead of the request failing: one
        whose circuit closed meanwhile (another request's probe found it back), else the one
        open longest, as a probe (one call at a time, its half-open permits). Models that came
        back are found at once (within `EARLY_PROBE_GAP` if their last early probe failed), a
        pool that is all down gets one probe per model and gap, and a model that failed this
        very request is not asked again."""
        asked = [h for h in self._handles if h.name in refused and h.available]
        for handle in asked:
            if handle.breaker.state is CircuitState.CLOSED:
                return handle.name
        now = ctx.clock.now()
        waiting = [
            h
            for h in asked
            if h.breaker.state is CircuitState.OPEN and now - h.early_probe_failed_at >= EARLY_PROBE_GAP
        ]
        if not waiting:
            return None
        first = min(waiting, key=lambda h: h.breaker.opened_at)
        first.breaker.expedite(now, "no model could answer: probing early")
        return first.name

    def early_probe_failed(self, ctx: Context, name: str) -> None:
        self._router.models[name].early_probe_failed_at = ctx.clock.now()

    async def probe_verdict(self, ctx: Context, refused: Sequence[str]) -> str | None:
        """Wait for the verdict on the half-open models among `refused` (another request holds
        their probe permits): the first to close, else None once each has reopened, or at
        `PROBE_WAIT`, or when the deadline would leave no room for an attempt. A continuation
        that took the probe of the only model left alive no longer fails the requests that
        arrive while it runs."""
        probing = {
            h.name: h
            for h in self._handles
            if h.name in refused and h.available and h.breaker.state is CircuitState.HALF_OPEN
        }
        if not probing:
            return None
        clock = ctx.clock
        until = clock.now() + PROBE_WAIT
        if ctx.deadline != math.inf:
            until = min(until, ctx.deadline - ctx.min_attempt)
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()

        def on_change(event: CircuitStateChanged) -> None:
            if event.model in probing and not wake.done():
                wake.set_result(None)

        unsubscribe = self._router.events.subscribe(on_change, kinds=(CircuitStateChanged,))
        try:
            while clock.now() < until:
                timer = clock.call_at(until, partial(_wake, wake))
                await wake
                timer.cancel()
                states = [h.breaker.state for h in probing.values()]
                for handle in probing.values():
                    if handle.breaker.state is CircuitState.CLOSED:
                        return handle.name
                if CircuitState.HALF_OPEN not in states:
                    return None
                wake = loop.create_future()
            return None
        finally:
            unsubscribe()

    def soft_cap(self, ctx: Context, candidate: Candidate) -> float:
        """The pool's cap, kept for `CAP_EVERY` requests (`cap_kept_for`) and redone sooner
        when the pool changes: asking every model for its bound on every request cost a
        5-model gateway more than all its other policies together, and the bounds are
        smoothed figures that move slowly."""
        if self.cap_kept_for > 0:  # a later candidate asking (the first reads it inline)
            self.cap_kept_for -= 1
            return self.cap_kept
        slow = self._slow
        bound = self._router.fastest_bound() if slow is not None else None
        self.cap_kept = slow.cap(bound) if slow is not None else math.inf
        # No figures yet: ask again next time.
        self.cap_kept_for = CAP_EVERY if bound is not None or slow is None else 0
        return self.cap_kept

    def candidates(self, ctx: Context) -> list[Candidate]:
        ordered = super().candidates(ctx)
        if self._keeps_order and not any(handle.restoring for handle in self._handles):
            self.kept = ordered
            # An open circuit's wait ends without an event: the model, kept as a reserve while
            # it refused, takes its place again then, and its next call is the half-open probe.
            now = ctx.clock.now()
            self.kept_until = min(
                (until for h in self._handles if (until := h.refuses_until()) > now), default=math.inf
            )
        return ordered

    def changed(self) -> None:
        self.kept = None
        self.cap_kept_for = 0


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _no_direct_call(request: Any) -> Any:
    raise RuntimeError("the router calls models through their own pipelines")
