"""One shape for every policy, and the pipeline that composes them outermost first.

A policy is ``(ctx, next) -> awaitable Outcome``: a filter over the next call, as in Finagle.
Pass-through policies (deadline, timeout) return ``next(ctx)`` directly instead of awaiting it,
so they add no coroutine frame to the success path.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .clock import SYSTEM_CLOCK, Clock
from .context import Call, Context
from .errors import AttemptTimeoutError, DeadlineExceededError
from .events import EventBus
from .expiry import current_task_of, watchdog_for
from .outcome import Outcome

Next = Callable[[Context], Awaitable[Outcome]]

_get_running_loop = asyncio.get_running_loop


class Policy(Protocol):
    """A filter over the next call."""

    def __call__(self, ctx: Context, next: Next) -> Awaitable[Outcome]: ...

    def describe(self) -> str: ...


class _Expiry:
    """Cancels the attempt's task when its timer fires, and remembers that it did."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


def _expired(ctx: Context, when: float) -> BaseException:
    if when >= ctx.deadline:
        return DeadlineExceededError(f"request deadline exceeded (model {ctx.model})")
    return AttemptTimeoutError(f"attempt timed out (model {ctx.model})")


async def invoke(ctx: Context) -> Outcome:
    """Run the wrapped call once, bounded by the nearer of the deadline and the attempt cap.

    The limit is registered with the clock's watchdog (no timer of its own); when it passes,
    the watchdog cancels the attempt's task and that cancellation becomes a timeout outcome,
    while a cancellation from outside (a hedge loser, the caller giving up) still propagates.
    """
    ctx.attempts += 1
    clock = ctx.clock
    now = ctx.attempt_started = clock.now()
    when = ctx.deadline if ctx.deadline < ctx.attempt_deadline else ctx.attempt_deadline
    if when == math.inf:
        try:
            value = await ctx.call(ctx.request)
        except Exception as exc:
            return Outcome(error=exc, model=ctx.model, attempts=ctx.attempts)
        finally:
            ctx.attempt_ended = clock.now()
        return Outcome(value, None, ctx.model, ctx.attempts)

    if now >= when:
        ctx.attempt_ended = now
        return Outcome(error=_expired(ctx, when), model=ctx.model, attempts=ctx.attempts)
    loop = _get_running_loop()
    task = current_task_of(loop)
    assert task is not None, "invoke must run inside a task"
    cancelling = task.cancelling()
    expiry = _Expiry(task)
    watchdog = watchdog_for(clock, loop)
    watchdog.add(expiry, when)
    try:
        value = await ctx.call(ctx.request)
    except asyncio.CancelledError:
        if expiry.fired and task.uncancel() <= cancelling:
            return Outcome(error=_expired(ctx, when), model=ctx.model, attempts=ctx.attempts)
        raise
    except Exception as exc:
        return Outcome(error=exc, model=ctx.model, attempts=ctx.attempts)
    finally:
        watchdog.remove(expiry)
        ctx.attempt_ended = clock.now()
    if expiry.fired:
        # The timer fired in the same loop iteration the call finished: consume our own
        # cancellation request so it does not hit the caller's next await.
        task.uncancel()
    return Outcome(value, None, ctx.model, ctx.attempts)


class Pipeline:
    """An ordered, frozen list of policies, outermost first.

    Usage::

        pipeline = Pipeline(Deadline(2.0), Retry(), CircuitBreakerPolicy(breaker), Timeout(0.5))
        outcome = await pipeline.execute(call_model, request)
    """

    __slots__ = ("policies", "run", "terminal")

    def __init__(self, *policies: Policy, terminal: Next = invoke) -> None:
        """`terminal` is what the innermost policy calls: one attempt by default, or e.g. a
        fallback's `run` that spreads the request over several models."""
        self.policies: tuple[Policy, ...] = policies
        self.terminal = terminal
        handler: Next = terminal
        for policy in reversed(policies):
            handler = _bind(policy, handler)
        self.run: Next = handler
        """Run the chain on an existing context (used when pipelines nest): the outermost
        handler itself rather than a method around it, one call less per request."""

    def execute(
        self,
        call: Call,
        request: Any,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        events: EventBus | None = None,
        model: str | None = None,
    ) -> Awaitable[Outcome]:
        """Call `call(request)` through every policy and return the outcome as a value.

        Each attempt's outcome carries the running attempt count, so the last one reports
        the total without an extra wrapping coroutine here."""
        ctx = Context(request, call, clock=clock, rng=rng, events=events, model=model)
        return self.run(ctx)

    def describe(self) -> list[str]:
        """The composition, outermost first, for logs and tests."""
        return [policy.describe() for policy in self.policies]


def _bind(policy: Policy, nxt: Next) -> Next:
    return lambda ctx: policy(ctx, nxt)
