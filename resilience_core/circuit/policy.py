"""The breaker as a pipeline policy: ask for a permit, call, report the result."""

from __future__ import annotations

from .._calm import Calm, Sink
from ..context import Context
from ..errors import CircuitOpenError
from ..outcome import Outcome
from ..policy import Guard
from ..predicates import RATE_LIMITED, TRANSIENT, Predicate
from .breaker import NO_PERMIT, PASSED_MOST, CircuitBreaker
from .state import CLOSED, HALF_OPEN

BREAKER_FAILURE = TRANSIENT & ~RATE_LIMITED
"""What counts against a model's circuit: transient failures, but not a rate limit (the model
is healthy, it asks us to slow down: a matter of availability the router handles)."""


class CircuitBreakerPolicy(Guard):
    """Fail fast while the breaker is open; count outcomes matching `failure` against it.

    Client errors (400, context length) are not the model's fault and do not count by default,
    nor do rate limits (429).

    Usage::

        CircuitBreakerPolicy(CircuitBreaker("gpt-a", CircuitBreakerConfig(consecutive_failures=3)))
    """

    __slots__ = ("breaker", "failure")

    def __init__(self, breaker: CircuitBreaker, *, failure: Predicate = BREAKER_FAILURE) -> None:
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

    def succeeded(self, ctx: Context, outcome: Outcome, reached: bool = True) -> None:
        """`settle` for a success: a fast one in the closed state, most attempts, is only noted
        (`CircuitBreaker.passed`) for the breaker to count when something needs the window."""
        breaker = self.breaker
        ended = ctx.attempt_ended
        duration = ended - ctx.attempt_started
        fast = duration < breaker.config.slow_call_duration
        if fast and breaker.state is CLOSED and ctx.permit == breaker.generation:
            if breaker.calm is not None:  # successes logged before this one are counted first
                breaker.calm.drain()
            passed = breaker.passed
            passed.append(ended)
            if len(passed) >= PASSED_MOST:
                breaker.fold()
        else:
            breaker.on_result(ctx.permit, False, duration, ended)

    def join_calm(self, calm: Calm) -> Sink:
        self.breaker.calm = calm
        return self.breaker.take_log

    def in_calm(self) -> bool:
        return self.breaker.calm is not None

    def calm_into(self, calm: Calm) -> bool:
        """Closed: every attempt is let through with the generation as its permit, and a
        fast success is only noted."""
        breaker = self.breaker
        if breaker.state is not CLOSED:
            return False
        calm.permit = breaker.generation
        calm.slow = min(calm.slow, breaker.config.slow_call_duration)
        return True

    def abandon(self, ctx: Context) -> None:
        """Cancelled from outside: says nothing of the model, unless another model answered
        first while this one was a half-open probe (a slow probe must not close the circuit)."""
        breaker = self.breaker
        if ctx.lost_race and breaker.state is HALF_OPEN:
            ended = ctx.attempt_ended
            breaker.on_result(ctx.permit, True, ended - ctx.attempt_started, ended)
        else:
            breaker.release(ctx.permit)

    def describe(self) -> str:
        return f"CircuitBreaker({self.breaker.name})"
