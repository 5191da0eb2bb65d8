"""Telemetry as frozen event values on one bus: metrics, audit trail and recorders subscribe.

Events are emitted on state changes and decisions, never per successful call, so the success
path pays nothing for telemetry. A listener that raises is logged and never breaks a call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events; `at` is the injected clock's time."""

    at: float
    model: str | None

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True)
class CircuitStateChanged(Event):
    """A breaker moved between closed, open, half-open and isolated."""

    from_state: str
    to_state: str
    reason: str


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """A failed attempt will be repeated after `delay` seconds."""

    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class RetryBudgetExhausted(Event):
    """A retry was skipped because retries already exceed their share of calls."""

    attempt: int


@dataclass(frozen=True, slots=True)
class BulkheadRejected(Event):
    """A call was refused because the model's concurrency limit and queue were full."""

    active: int
    queued: int


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """A request moved on from a failed or excluded model to the next candidate."""

    from_model: str | None
    to_model: str
    reason: str


@dataclass(frozen=True, slots=True)
class HedgeStarted(Event):
    """A parallel attempt started because the earlier ones had not answered in time."""

    after: float


@dataclass(frozen=True, slots=True)
class DegradedAnswerServed(Event):
    """The last-resort answer was served because no model could answer."""

    reason: str


@dataclass(frozen=True, slots=True)
class HealthChanged(Event):
    """A model's health moved between healthy, degraded and unhealthy."""

    from_state: str
    to_state: str
    reason: str


@dataclass(frozen=True, slots=True)
class WeightChanged(Event):
    """A model's routing weight changed."""

    from_weight: float
    to_weight: float
    reason: str


@dataclass(frozen=True, slots=True)
class ModelHeld(Event):
    """A model is held (tried only after the free ones) until `until`: rate limited, or slow."""

    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class RestorationStepChanged(Event):
    """Progressive restoration moved a recovered model to a new traffic share."""

    from_share: float
    to_share: float
    reason: str


@dataclass(frozen=True, slots=True)
class AdminAction(Event):
    """An operator acted by hand: who, what and why."""

    action: str
    who: str
    why: str
    details: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]
E = TypeVar("E", bound=Event)


class EventBus:
    """Fan-out of events to listeners, isolating the caller from listener failures.

    A listener hears every event, or only the kinds it names (as resilience4j's
    `onStateTransition`): `bus.subscribe(fn, kinds=(CircuitStateChanged,))`. Who hears an
    event type is worked out once per type and kept until someone subscribes or leaves.
    """

    __slots__ = ("_by_type", "_listeners")

    def __init__(self) -> None:
        self._listeners: list[tuple[Listener, tuple[type[Event], ...]]] = []
        self._by_type: dict[type[Event], tuple[Listener, ...]] = {}

    def subscribe(
        self, listener: Callable[[E], None], *, kinds: tuple[type[E], ...] = ()
    ) -> Callable[[], None]:
        """Add a listener for `kinds` (subclasses included; every event when empty); returns a
        function that removes it."""
        entry: tuple[Listener, tuple[type[Event], ...]] = (listener, tuple(kinds))  # type: ignore[assignment]
        self._listeners.append(entry)
        self._by_type.clear()

        def unsubscribe() -> None:
            self._listeners.remove(entry)
            self._by_type.clear()

        return unsubscribe

    def listeners_of(self, kind: type[Event]) -> tuple[Listener, ...]:
        """Who hears an event of type `kind`, in subscription order."""
        found = self._by_type.get(kind)
        if found is None:
            found = self._by_type[kind] = tuple(
                listener for listener, kinds in self._listeners if not kinds or issubclass(kind, kinds)
            )
        return found

    def emit(self, event: Event) -> None:
        for listener in self.listeners_of(type(event)):
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener, event.kind)
