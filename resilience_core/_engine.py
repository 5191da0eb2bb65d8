"""The attempt engine: one upstream call with its guards around it, repeated while a repeater
says so, all in one coroutine frame. Private: `Pipeline` builds it from the policies next to
the attempt; a policy's own code never sees it.

Why one frame: guards (breaker, timeout, metrics, recovery) act only before and after an
attempt and a repeater (retry) only decides whether to go again, so none of them needs a frame
of its own, and a frame per layer is a visible share of a gateway request (docs/benchmarks.md).
The loop reads as the steps of an attempt: admit all, call bounded, settle or defer, next delay.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from ._expiry import watchdog_for
from .context import Context
from .errors import AnswerFailedError, AttemptTimeoutError, DeadlineExceededError, RejectedError
from .outcome import Outcome, Settleable

Next = Callable[[Context], Awaitable[Outcome]]
Admit = Callable[[Context], Outcome | None]
Settle = Callable[[Context, Outcome, bool], None]
Abandon = Callable[[Context], None]
Begin = Callable[[Context, float], None]
Again = Callable[[Context, Outcome, int, float], float | None]


@dataclass(frozen=True, slots=True)
class Steps:
    """What the guards and the repeater of one pipeline bring to its attempts.

    `admits` are in order, outermost first, each with its guard's position; `settles` the
    same, innermost first; `abandons` innermost first. Hooks a policy leaves as its base
    class's no-op are not listed, so they cost nothing.
    """

    admits: tuple[tuple[int, Admit], ...] = ()
    settles: tuple[tuple[int, Settle], ...] = ()
    abandons: tuple[Abandon, ...] = ()
    begin: Begin | None = None
    again: Again | None = None


def attempt_with(steps: Steps) -> Next:
    """The attempt loop of one pipeline (see the module docstring)."""
    admits, settles, abandons = steps.admits, steps.settles, steps.abandons
    settle_all = tuple(settle for _, settle in settles)
    begin, again = steps.begin, steps.again

    async def attempt(ctx: Context) -> Outcome:
        start = ctx.attempt_started = ctx.clock.now()  # the one clock read guards and repeater share
        if begin is not None:
            begin(ctx, start)
        tries = 0
        previous: Outcome | None = None
        while True:
            outcome = admit_all(ctx, admits, settles)
            if outcome is None:
                ctx.attempt_ended = -1.0
                outcome = await call_bounded(ctx, abandons)
                if ctx.attempt_ended < 0:  # expired before the call: settle as never reached
                    for _, settle in settles:
                        settle(ctx, outcome, False)
                elif settle_all:
                    settle_or_defer(ctx, outcome, settle_all)
            if outcome.error is None or again is None:
                return outcome
            if previous is not None and isinstance(outcome.error, RejectedError):
                return previous  # a refused repeat: the upstream's own failure says more (see Repeater)
            tries += 1
            delay = again(ctx, outcome, tries, start)
            if delay is None:
                return outcome
            await ctx.clock.sleep(delay)
            previous = outcome
            ctx.attempt_started = ctx.clock.now()

    return attempt


def admit_all(
    ctx: Context, admits: Sequence[tuple[int, Admit]], settles: Sequence[tuple[int, Settle]]
) -> Outcome | None:
    """None when every guard admits the attempt; else the first refusal, which only the guards
    outside the refusing one hear of (as not reached)."""
    for position, admit in admits:
        refusal = admit(ctx)
        if refusal is not None:
            for outer, settle in settles:
                if outer < position:
                    settle(ctx, refusal, False)
            return refusal
    return None


async def call_bounded(ctx: Context, abandons: Sequence[Abandon]) -> Outcome:
    """Call the upstream once, bounded by the nearer of the deadline and the attempt's cap.

    The bound is registered with the clock's watchdog (no timer of its own); when it passes,
    the watchdog cancels this task and that cancellation becomes a timeout outcome, while a
    cancellation from outside (a hedge loser, the caller giving up) still propagates after
    telling the guards."""
    when = ctx.deadline if ctx.deadline < ctx.attempt_deadline else ctx.attempt_deadline
    if ctx.attempt_started >= when:  # the budget ran out before the call: the model was never asked
        return Outcome(error=expired(ctx, when), model=ctx.model, attempts=ctx.attempts)
    ctx.attempts += 1
    if when == math.inf:
        try:
            outcome = Outcome(await ctx.call(ctx.request), None, ctx.model, ctx.attempts)
        except asyncio.CancelledError:
            abandon(ctx, abandons)
            raise
        except Exception as exc:
            outcome = Outcome(error=exc, model=ctx.model, attempts=ctx.attempts)
        ctx.attempt_ended = ctx.first_byte = ctx.clock.now()
        return outcome
    task = asyncio.current_task()
    assert task is not None, "an attempt must run inside a task"
    cancelling = task.cancelling()
    expiry = partial(task.cancel)  # an identity of its own: this attempt's key in the watchdog
    watchdog = watchdog_for(ctx.clock, task.get_loop())
    watchdog.add(expiry, when)
    try:
        outcome = Outcome(await ctx.call(ctx.request), None, ctx.model, ctx.attempts)
    except asyncio.CancelledError:
        # Still pending: the cancellation came from outside. Fired, and more cancellations
        # than ours: from outside too. Either way it propagates.
        if watchdog.remove(expiry) or task.uncancel() > cancelling:
            abandon(ctx, abandons)
            raise
        outcome = Outcome(error=expired(ctx, when), model=ctx.model, attempts=ctx.attempts)
    except Exception as exc:
        outcome = Outcome(error=exc, model=ctx.model, attempts=ctx.attempts)
        if not watchdog.remove(expiry):
            task.uncancel()  # fired as the call ended: see below
    else:
        if not watchdog.remove(expiry):
            # The timer fired in the same loop iteration the call finished: consume our own
            # cancellation request so it does not hit the caller's next await.
            task.uncancel()
    ctx.attempt_ended = ctx.first_byte = ctx.clock.now()
    return outcome


def expired(ctx: Context, when: float) -> BaseException:
    if when >= ctx.deadline:
        return DeadlineExceededError(f"request deadline exceeded (model {ctx.model})")
    return AttemptTimeoutError(f"attempt timed out (model {ctx.model})")


def settle_or_defer(ctx: Context, outcome: Outcome, settles: Sequence[Settle]) -> None:
    """Tell the guards how an attempt that reached the upstream ended. A value whose result is
    known only later (`Settleable`: a started stream) is judged when it settles: the guards
    then hear of it as a success, or as an `AnswerFailedError`, with the attempt ending then.
    They read the context as it is then (permit, start, model): nothing may run another
    attempt on it meanwhile, and nothing in the core does (a success ends the routing)."""
    if outcome.error is None and isinstance(outcome.value, Settleable):
        outcome.value.on_settled(partial(_settle_late, ctx, outcome, settles))
        return
    for settle in settles:
        settle(ctx, outcome, True)


def _settle_late(ctx: Context, outcome: Outcome, settles: Sequence[Settle], failed: bool) -> None:
    ctx.attempt_ended = ctx.clock.now()
    if failed:
        outcome = Outcome(error=AnswerFailedError(ctx.model), model=ctx.model, attempts=outcome.attempts)
    for settle in settles:
        settle(ctx, outcome, True)


def abandon(ctx: Context, abandons: Sequence[Abandon]) -> None:
    """The attempt was cancelled from outside: stamp its end, tell the guards innermost first."""
    ctx.attempt_ended = ctx.clock.now()
    for hook in abandons:
        hook(ctx)
