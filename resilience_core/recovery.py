"""Automatic recovery: after a breaker closes again, give the model its traffic back in steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .circuit.breaker import CircuitBreaker
from .circuit.state import CircuitState
from .context import Context
from .errors import AnswerFailedError
from .events import CircuitStateChanged, Event, RestorationStepChanged
from .outcome import Outcome
from .policy import Guard
from .predicates import RATE_LIMITED, TRANSIENT, Predicate

DEFAULT_STEPS = (0.1, 0.25, 0.5, 1.0)
DEFAULT_HOLD = 10.0


@dataclass(frozen=True, slots=True)
class RestorationConfig:
    """Traffic shares a recovered model climbs through, each held `hold` seconds.

    Usage::

        RestorationConfig(steps=(0.1, 0.25, 0.5, 1.0), hold=10.0)
    """

    steps: tuple[float, ...] = DEFAULT_STEPS
    hold: float = DEFAULT_HOLD

    def __post_init__(self) -> None:
        if not self.steps or self.steps[-1] != 1.0:
            raise ValueError("restoration steps must end at 1.0")
        if any(not 0 < s <= 1 for s in self.steps):
            raise ValueError("restoration steps must be in (0, 1]")
        if any(a >= b for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("restoration steps must increase")
        if self.hold < 0:
            raise ValueError("hold must be >= 0")


class Restoration:
    """One model's progressive restoration; the share advances lazily when read."""

    __slots__ = ("_emit", "_since", "config", "model", "step")

    def __init__(
        self, model: str, config: RestorationConfig, emit: Callable[[Event], None] | None = None
    ) -> None:
        self.model = model
        self.config = config
        self._emit = emit
        self.step: int | None = None
        """Index into `config.steps` of the share being held; None when not restoring."""
        self._since = 0.0

    @property
    def active(self) -> bool:
        return self.step is not None

    def start(self, now: float, reason: str) -> None:
        self._set(0, now, reason)

    def abort(self, now: float, reason: str) -> None:
        if self.step is not None:
            self._announce(self.config.steps[self.step], 0.0, now, reason)
            self.step = None

    def share(self, now: float) -> float:
        """The share of requests that may try this model first (1.0 when not restoring)."""
        index = self.step
        if index is None:
            return 1.0
        steps = self.config.steps
        while index is not None and now - self._since >= self.config.hold:
            if index + 1 >= len(steps) - 1:
                self._announce(steps[index], 1.0, now, "restoration complete")
                self.step = None
                return 1.0
            self._set(index + 1, self._since + self.config.hold, f"held {self.config.hold}s healthy")
            index = self.step
        return steps[index] if index is not None else 1.0

    def _set(self, index: int, now: float, reason: str) -> None:
        steps = self.config.steps
        before = 0.0 if self.step is None else steps[self.step]
        if steps[index] >= 1.0:
            self.step = None
            self._announce(before, 1.0, now, reason)
            return
        self.step = index
        self._since = now
        self._announce(before, steps[index], now, reason)

    def _announce(self, before: float, after: float, now: float, reason: str) -> None:
        if self._emit is not None:
            self._emit(RestorationStepChanged(now, self.model, before, after, reason))


class AutoRecovery(Guard):
    """Ties a breaker to a restoration: half-open -> closed starts the climb, a failure during
    the climb re-opens the breaker. Use it as a policy just outside the breaker.

    Usage::

        recovery = AutoRecovery(breaker, RestorationConfig())
        events.subscribe(recovery.on_event, kinds=(CircuitStateChanged,))
        Pipeline(recovery, CircuitBreakerPolicy(breaker))
    """

    __slots__ = ("breaker", "failure", "restoration")

    quiet_on_success = True  # it acts on failures during a climb only

    def __init__(
        self,
        breaker: CircuitBreaker,
        config: RestorationConfig | None = None,
        *,
        emit: Callable[[Event], None] | None = None,
        failure: Predicate = TRANSIENT & ~RATE_LIMITED,
    ) -> None:
        self.breaker = breaker
        self.restoration = Restoration(breaker.name, config or RestorationConfig(), emit)
        self.failure = failure

    def on_event(self, event: CircuitStateChanged) -> None:
        """Start restoring when this model's breaker closes after probing (or a manual restore).
        Subscribed to breaker transitions only (`kinds=(CircuitStateChanged,)`); it hears every
        model's, and follows its own."""
        if event.model != self.breaker.name:
            return
        if event.to_state == CircuitState.CLOSED and event.from_state != CircuitState.CLOSED:
            self.restoration.start(event.at, f"circuit closed: {event.reason}")
        elif event.to_state in (CircuitState.OPEN, CircuitState.ISOLATED):
            self.restoration.abort(event.at, f"circuit {event.to_state}")

    def admission(self, now: float) -> float:
        return self.restoration.share(now)

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        if outcome.error is not None and self.restoration.active and self.failure(outcome):
            late = "late " if isinstance(outcome.error, AnswerFailedError) else ""
            self.breaker.trip(ctx.clock.now(), f"{late}failure during progressive restoration")

    def describe(self) -> str:
        return f"AutoRecovery({self.breaker.name})"
