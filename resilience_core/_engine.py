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
import sys
import weakref
from asyncio import get_running_loop
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ._calm import LOG_MOST, NEVER, Calm
from ._expiry import Watchdog, watchdog_for
from .clock import Clock, LoopClock
from .context import Context
from .errors import AnswerFailedError, AttemptTimeoutError, DeadlineExceededError, RejectedError
from .outcome import Outcome, Settleable

if sys.version_info >= (3, 12):
    task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = asyncio.current_task
else:
    # 3.11's `current_task` is a Python function reading this dict (C from 3.12 on): one frame
    # less on every attempt with a deadline.
    task_of = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
"""The task running on a loop, as `asyncio.current_task(loop)`."""

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
    class's no-op are not listed, so they cost nothing. `succeeded` are the success hooks
    (`Guard.succeeded`, else `settle`) of the guards with something to do when an attempt
    simply succeeds (most attempts): the others are not called then. `cap` is the innermost
    admitting guard's cap on each attempt when capping is all its admit does
    (`Guard.caps_attempt`): the engine applies it itself. While `calm` is quiet, the admits
    and success hooks are skipped and a fast success is logged there instead (`_calm`).
    """

    admits: tuple[tuple[int, Admit], ...] = ()
    settles: tuple[tuple[int, Settle], ...] = ()
    abandons: tuple[Abandon, ...] = ()
    begin: Begin | None = None
    again: Again | None = None
    succeeded: tuple[Settle, ...] = ()
    cap: float = math.inf
    calm: Calm = NEVER


def attempt_with(steps: Steps) -> Next:
    """The attempt loop of one pipeline (see the module docstring).

    The upstream call is bounded here too, in the same frame: the nearer of the deadline and
    the attempt's cap is registered with the clock's watchdog (no timer of its own); when it
    passes, the watchdog cancels this task and that cancellation becomes a timeout outcome,
    while a cancellation from outside (a hedge loser, the caller giving up) still propagates
    after telling the guards.

    When the sequence ends in failure and the context carries a `failover` (the fallback's
    rest, set only when this engine is the candidate's whole pipeline), that is awaited here
    rather than in a fallback frame around this one: most requests succeed on their first
    candidate and then pay for no such frame. Those two frames (the bounded call's coroutine
    and the fallback's) were 2.9 k of the policies' 38.6 k instructions per gateway request,
    counted in process by callgrind."""
    admits, settles, abandons = steps.admits, steps.settles, steps.abandons
    settle_all = tuple(settle for _, settle in settles)
    settle_ok = steps.succeeded
    begin, again, cap, calm = steps.begin, steps.again, steps.cap, steps.calm
    # The last clock, a weak reference to its loop (this cache keeps no loop alive), their
    # watchdog and its entries: closure cells, read without a subscript.
    kept_clock: Clock | None = None
    kept_loop: Callable[[], asyncio.AbstractEventLoop | None] = _NO_LOOP
    kept_dog: Watchdog = _NO_DOG
    kept_entries: dict[Context, float] = {}

    async def attempt(ctx: Context) -> Outcome:
        nonlocal kept_clock, kept_loop, kept_dog, kept_entries
        clock = ctx.clock
        start = started = ctx.attempt_started = clock.now()  # the one clock read guards and repeater share
        failover = ctx.failover  # taken now, so a context used again later cannot run it
        if failover is not None:
            ctx.failover = None
        if begin is not None:
            begin(ctx, start)
        tries = 0
        previous: Outcome | None = None
        while True:
            outcome = None
            if calm.quiet:  # every admit would let it through: the breaker's permit is the calm's
                epoch: int | None = calm.epoch
                if calm.permit >= 0:
                    ctx.permit = calm.permit
            else:
                epoch = None
                for position, admit in admits:  # `admit_all`, inline
                    outcome = admit(ctx)
                    if outcome is not None:
                        refused(ctx, outcome, position, settles)
                        break
            if outcome is None:
                ctx.attempt_ended = -1.0
                when = ctx.deadline
                if cap != math.inf:  # `Timeout.admit`, inline
                    soft = ctx.soft_cap
                    bound = ctx.attempt_deadline = started + (cap if cap < soft else soft)
                    if bound < when:
                        when = bound
                elif ctx.attempt_deadline < when:
                    when = ctx.attempt_deadline
                if started >= when:  # the budget ran out first: the model was never asked
                    outcome = Outcome(error=expired(ctx, when), model=ctx.model, attempts=ctx.attempts)
                    for _, settle in settles:
                        settle(ctx, outcome, False)
                else:
                    ctx.attempts += 1
                    watchdog: Watchdog | None = None
                    if when != math.inf:
                        loop = get_running_loop()
                        running = task_of(loop)
                        assert running is not None, "an attempt must run inside a task"
                        task = running  # typed as a task, not an optional one, for the branches below
                        cancelling = task.cancelling()
                        ctx.task = task  # what the watchdog cancels; the context is the entry
                        if kept_clock is clock and kept_loop() is loop:
                            watchdog, entries = kept_dog, kept_entries
                        else:
                            watchdog = kept_dog = watchdog_for(clock, loop)
                            entries = kept_entries = watchdog.entries
                            kept_clock, kept_loop = clock, weakref.ref(loop)
                        entries[ctx] = when  # the watchdog's entry; popped below when the call ends
                        if when < watchdog.armed_at:
                            watchdog.arm(when)
                    try:
                        outcome = Outcome(await ctx.call(ctx.request), None, ctx.model, ctx.attempts)
                    except asyncio.CancelledError:
                        # Still pending: the cancellation came from outside. Fired, and more
                        # cancellations than ours: from outside too. Either way it propagates.
                        if (
                            watchdog is None
                            or entries.pop(ctx, None) is not None
                            or task.uncancel() > cancelling
                        ):
                            abandon(ctx, abandons)
                            raise
                        outcome = Outcome(error=expired(ctx, when), model=ctx.model, attempts=ctx.attempts)
                    except Exception as exc:
                        outcome = Outcome(error=exc, model=ctx.model, attempts=ctx.attempts)
                        if watchdog is not None and entries.pop(ctx, None) is None:
                            task.uncancel()  # fired as the call ended: see below
                    else:
                        if watchdog is not None and entries.pop(ctx, None) is None:
                            # The timer fired in the same loop iteration the call finished:
                            # consume our own cancellation so it does not hit the next await.
                            task.uncancel()
                    ended = ctx.attempt_ended = ctx.first_byte = clock.now()
                    if settle_all:  # `settle_or_defer`, inline (no guard: no stream callback either)
                        if outcome.error is not None:
                            for settle in settle_all:
                                settle(ctx, outcome, True)
                        elif isinstance(outcome.value, Settleable):
                            defer(ctx, outcome, settle_all)
                        elif epoch == calm.epoch and ended - started < calm.slow:
                            log = calm.log  # calm throughout, and fast: the guards count it later
                            log += (started, ended, ended)
                            if len(log) >= LOG_MOST:
                                calm.drain()
                        else:
                            for settle in settle_ok:
                                settle(ctx, outcome, True)
            if outcome.error is None:
                return outcome
            if again is None:
                break
            if previous is not None and isinstance(outcome.error, RejectedError):
                outcome = previous  # a refused repeat: the upstream's own failure says more (see Repeater)
                break
            tries += 1
            delay = again(ctx, outcome, tries, start)
            if delay is None:
                break
            await clock.sleep(delay)
            previous = outcome
            started = ctx.attempt_started = clock.now()
        if failover is None:
            return outcome
        return await failover(ctx, outcome)

    return attempt


def _NO_LOOP() -> None:
    """What a weak reference to no loop yet gives."""


_NO_DOG = Watchdog(LoopClock())
"""The watchdog cell's value before the first bounded attempt: never armed (no clock is
cached yet, so it is never read)."""


def refused(ctx: Context, refusal: Outcome, position: int, settles: Sequence[tuple[int, Settle]]) -> None:
    """The guard at `position` refused the attempt: only the guards outside it hear of it (as
    not reached)."""
    for outer, settle in settles:
        if outer < position:
            settle(ctx, refusal, False)


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
        defer(ctx, outcome, settles)
        return
    for settle in settles:
        settle(ctx, outcome, True)


def defer(ctx: Context, outcome: Outcome, settles: Sequence[Settle]) -> None:
    """Have a started stream settle the guards when it ends (see `settle_or_defer`)."""
    assert isinstance(outcome.value, Settleable)
    outcome.value.on_settled(partial(_settle_late, ctx, outcome, settles))


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
