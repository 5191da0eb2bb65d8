"""The breaker as a pipeline policy: ask for a permit, call, report the result."""

from __future__ import annotations

import asyncio
from functools import partial

from ..context import Context
from ..errors import CircuitOpenError
from ..outcome import Outcome, Settleable
from ..policy import Next
from ..predicates import TRANSIENT, Predicate
from .breaker import NO_PERMIT, CircuitBreaker
from .state import CircuitState


class CircuitBreakerPolicy:
    """Fail fast while the breaker is open; count outcomes matching `failure` against it.

    Client errors (400, context length) are not the model's fault and do not count by default.

    Usage::

        CircuitBreakerPolicy(CircuitBreaker("gpt-a", CircuitBreakerConfig(consecutive_failures=3)))
    """

    __slots__ = ("breaker", "failure")

    def __init__(self, breaker: CircuitBreaker, *, failure: Predicate = TRANSIENT) -> None:
        self.breaker = breaker
        self.failure = failure

    async def __call__(self, ctx: Context, next: Next) -> Outcome:
        breaker = self.breaker
        if breaker.state is CircuitState.CLOSED:
            permit = breaker.generation  # the closed state admits everyone; skip the clock
        else:
            permit = breaker.try_acquire(ctx.clock.now())
            if permit == NO_PERMIT:
                message = f"circuit for {breaker.name} is {breaker.state.value}"
                return Outcome(error=CircuitOpenError(message, breaker.name), model=ctx.model)
        ctx.attempt_ended = -1.0
        try:
            outcome = await next(ctx)
        except asyncio.CancelledError:
            breaker.release(permit)
            raise
        if ctx.attempt_ended < 0:
            breaker.release(permit)  # rejected further in (bulkhead): says nothing of the model
            return outcome
        if outcome.error is None and isinstance(outcome.value, Settleable):
            outcome.value.on_settled(partial(self._settled, ctx, permit))  # judged when it ends
            return outcome
        failed = outcome.error is not None and self.failure(outcome)
        ended = ctx.attempt_ended
        breaker.on_result(permit, failed, ended - ctx.attempt_started, ended)  # positional: hot path
        return outcome

    def _settled(self, ctx: Context, permit: int, failed: bool) -> None:
        now = ctx.clock.now()
        self.breaker.on_result(permit, failed=failed, duration=now - ctx.attempt_started, now=now)

    def describe(self) -> str:
        return f"CircuitBreaker({self.breaker.name})"
