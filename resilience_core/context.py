"""Per-request state that policies read and narrow as the call travels inward."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from .clock import SYSTEM_CLOCK, Clock
from .events import EventBus

_SHARED_RNG = random.Random()
"""Used when no random source is injected; seeding a new one per request costs ~10 µs."""

_SILENT = EventBus()
"""Used when no bus is injected: nobody can subscribe to it from outside."""

_new_context = object.__new__

Call = Callable[[Any], Awaitable[Any]]
"""The wrapped operation: `async (request) -> response`, from any transport."""


class Context:
    """Mutable, single-request bag: request, the deadlines in force, and injected services.

    `deadline` is the request-level budget (absolute clock time); `attempt_deadline` is the
    per-attempt cap. The innermost invoker arms one timer at the nearer of the two, so a
    deadline and a timeout together cost one timer per attempt, not two.
    """

    __slots__ = (
        "attempt_deadline",
        "attempt_ended",
        "attempt_started",
        "attempts",
        "call",
        "clock",
        "deadline",
        "events",
        "min_attempt",
        "model",
        "permit",
        "request",
        "rng",
    )

    def __init__(
        self,
        request: Any,
        call: Call,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        events: EventBus | None = None,
        model: str | None = None,
    ) -> None:
        self.request = request
        self.call = call
        self.clock = clock
        self.rng = rng if rng is not None else _SHARED_RNG
        self.events = events if events is not None else _SILENT
        self.model = model
        self.deadline = math.inf
        self.attempt_deadline = math.inf
        self.min_attempt = 0.0
        self.attempts = 0
        self.attempt_started = 0.0
        self.attempt_ended = -1.0
        """Stamped by the invoker, so breaker and metrics need not read the clock themselves;
        -1 means no attempt reached the upstream."""
        self.permit = -1
        """The circuit breaker's permit for the running attempt: its guard has no frame of its
        own to keep it in between admitting the attempt and settling it."""

    def fork(self, model: str | None, call: Call) -> Context:
        """A child context for one candidate: same request, budget and services, own attempt.

        Built slot by slot rather than through `__init__`: once per request, and the keyword
        handling and defaulting there cost more than the copying."""
        child = _new_context(Context)
        child.request = self.request
        child.call = call
        child.clock = self.clock
        child.rng = self.rng
        child.events = self.events
        child.model = model
        child.deadline = self.deadline
        child.attempt_deadline = math.inf
        child.min_attempt = self.min_attempt
        child.attempts = 0
        child.attempt_started = 0.0
        child.attempt_ended = -1.0
        child.permit = -1
        return child

    def remaining(self) -> float:
        """Seconds left of the request-level budget (inf when there is none)."""
        return self.deadline - self.clock.now()

    def can_start_attempt(self, delay: float = 0.0) -> bool:
        """Whether an attempt starting after `delay` still fits in the budget."""
        if self.deadline == math.inf:
            return True
        return self.clock.now() + delay + self.min_attempt < self.deadline
