"""Request-level budget and per-attempt timeout: both only narrow the context's limits.

Enforcement happens once, in the innermost invoker, which arms a single timer at the nearer
limit. So `Deadline(2.0)` plus `Timeout(0.5)` costs one timer per attempt, and a retry or
fallback that could not finish inside the budget is never started (see `Context.can_start_attempt`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from .context import Context
from .outcome import Outcome
from .policy import Guard, Next


@dataclass(frozen=True, slots=True)
class Deadline:
    """Bound the whole request, retries and fallbacks included, to `seconds`.

    `min_attempt` is the least time an attempt needs to be worth starting: a retry or a
    fallback is skipped when less than that would remain.

    Usage::

        Pipeline(Deadline(10.0, min_attempt=0.2), Retry(), Timeout(3.0))
    """

    seconds: float
    min_attempt: float = 0.0

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"Deadline.seconds must be > 0, got {self.seconds}")
        if self.min_attempt < 0:
            raise ValueError(f"Deadline.min_attempt must be >= 0, got {self.min_attempt}")

    def narrow(self, ctx: Context) -> None:
        """Apply this budget to `ctx`: it can only shorten the one already there. Also what a
        router calls as it makes a request's context, with no pipeline layer for it."""
        limit = ctx.clock.now() + self.seconds
        if limit < ctx.deadline:
            ctx.deadline = limit
        if self.min_attempt > ctx.min_attempt:
            ctx.min_attempt = self.min_attempt

    def __call__(self, ctx: Context, next: Next) -> Awaitable[Outcome]:
        self.narrow(ctx)
        return next(ctx)

    def describe(self) -> str:
        return f"Deadline({self.seconds}s)"


@dataclass(frozen=True, slots=True)
class Timeout(Guard):
    """Cap each attempt at `seconds` (never beyond the request deadline).

    Usage::

        Pipeline(Retry(), Timeout(0.5))   # every attempt gets its own 0.5 s
    """

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"Timeout.seconds must be > 0, got {self.seconds}")

    def caps_attempt(self) -> float | None:
        return self.seconds

    def admit(self, ctx: Context) -> Outcome | None:
        cap = ctx.soft_cap
        ctx.attempt_deadline = ctx.attempt_started + (self.seconds if self.seconds < cap else cap)
        return None

    def __call__(self, ctx: Context, next: Next) -> Awaitable[Outcome]:
        # Nothing to settle: pass straight through, no frame of its own (so stamp as one would).
        ctx.attempt_started = ctx.clock.now()
        self.admit(ctx)
        return next(ctx)

    def describe(self) -> str:
        return f"Timeout({self.seconds}s)"
