"""The breaker as a pipeline policy: ask for a permit, call, report the result."""

from __future__ import annotations

from ..context import Context
from ..errors import CircuitOpenError
from ..outcome import Outcome
from ..policy import Guard
from ..predicates import TRANSIENT, Predicate
from .breaker import NO_PERMIT, CircuitBreaker
from .state import CLOSED


class CircuitBreakerPolicy(Guard):
    """Fail fast while the breaker is open; count outcomes matching `failure` against it.

    Client errors (400, context length) are not the model's fault and do not count by default.

    Usage::

        CircuitBreakerPolicy(CircuitBreaker("gpt-a", CircuitBreakerConfig(consecutive_failures=3)))
    """

    __slots__ = ("breaker", "failure")

    def __init__(self, breaker: CircuitBreaker, *, failure: Predicate = TRANSIENT) -> None:
        self.breaker = breaker
        self.failure = failure

    def admit(self, ctx: Context) -> Outcome | None:
        breaker = self.breaker
        if breaker.state is CLOSED:
            ctx.permit = breaker.generation  # the closed state admits everyone
            return None
        permit = ctx.permit = breaker.try_acquire(ctx.attempt_started)
        if permit == NO_PERMIT:
            message = f"circuit for {breaker.name} is {breaker.state.value}"
            return Outcome(error=CircuitOpenError(message, breaker.name), model=ctx.model)
        return None

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        if not reached:
            self.breaker.release(ctx.permit)  # refused further in (bulkhead): says nothing of the model
            return
        failed = outcome.error is not None and self.failure(outcome)
        ended = ctx.attempt_ended
        self.breaker.on_result(ctx.permit, failed, ended - ctx.attempt_started, ended)

    def abandon(self, ctx: Context) -> None:
        self.breaker.release(ctx.permit)

    def describe(self) -> str:
        return f"CircuitBreaker({self.breaker.name})"
