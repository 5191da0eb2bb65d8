"""Per-request state that policies read and narrow as the call travels inward."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from .clock import SYSTEM_CLOCK, Clock
from .events import EventBus
from .outcome import Outcome

_SHARED_RNG = random.Random()
"""Used when no random source is injected: seeding a new one per request would cost more than
the policies themselves."""

_SILENT = EventBus()
"""Used when no bus is injected: nobody can subscribe to it from outside."""

_new_context = object.__new__

INHERITED = ("clock", "deadline", "events", "min_attempt", "request", "rng")
"""What a child context shares with its parent: the request, its budget and the services."""
PER_ATTEMPT = (
    "alternatives",
    "attempt_deadline",
    "attempt_ended",
    "attempt_started",
    "attempts",
    "failover",
    "first_byte",
    "lost_race",
    "permit",
    "soft_cap",
    "task",
)
"""What each child starts afresh, as `__init__` sets it."""

Call = Callable[[Any], Awaitable[Any]]
"""The wrapped operation: `async (request) -> response`, from any transport."""


class Context:
    """Mutable, single-request bag: request, the deadlines in force, and injected services.

    `deadline` is the request-level budget (absolute clock time); `attempt_deadline` is the
    per-attempt cap. The innermost invoker arms one timer at the nearer of the two, so a
    deadline and a timeout together cost one timer per attempt, not two.
    """

    __slots__ = (
        "alternatives",
        "attempt_deadline",
        "attempt_ended",
        "attempt_started",
        "attempts",
        "call",
        "clock",
        "deadline",
        "events",
        "failover",
        "first_byte",
        "lost_race",
        "min_attempt",
        "model",
        "permit",
        "request",
        "rng",
        "soft_cap",
        "task",
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
        self.first_byte = -1.0
        """When the call returned its first answer (a stream: its first content), -1 if not yet."""
        self.soft_cap = math.inf
        """Seconds an attempt may wait for its first answer while another candidate remains
        (set by the fallback; `Timeout` applies it): slow is judged in flight, not at the end."""
        self.lost_race = False
        """The attempt was cancelled because another candidate answered first (a hedge loser)."""
        self.alternatives = 0
        """Candidates the fallback can still try after this one (a retry may prefer them)."""
        self.failover: Callable[[Context, Outcome], Awaitable[Outcome]] | None = None
        """The rest of the fallback, set by it on the request's own context for its first
        candidate: that candidate's attempt engine takes it (clearing it) as it starts, and
        awaits it if the attempts end in failure (see `_engine.attempt_with`)."""
        self.task: asyncio.Task[Any] | None = None
        """The task running the bounded attempt: what the clock's watchdog cancels when the
        attempt's time is up (the context itself is its entry, see `_expiry.Watchdog`)."""

    def fork(self, model: str | None, call: Call) -> Context:
        """A child context for one candidate: the `INHERITED` fields copied, the `PER_ATTEMPT`
        ones fresh, `model` and `call` given.

        Built slot by slot rather than through `__init__` (every request forks once, and the
        keyword handling there costs more than the copying); `tests/resilience_core/
        test_context.py` keeps these lines and the two lists complete."""
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
        child.first_byte = -1.0
        child.soft_cap = math.inf
        child.lost_race = False
        child.alternatives = 0
        child.failover = None
        child.task = None
        return child

    def can_start_attempt(self, delay: float = 0.0) -> bool:
        """Whether an attempt starting after `delay` still fits in the budget."""
        if self.deadline == math.inf:
            return True
        return self.clock.now() + delay + self.min_attempt < self.deadline
