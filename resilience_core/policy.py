"""One shape for every policy, and the pipeline that composes them outermost first.

A policy is ``(ctx, next) -> awaitable Outcome``: a filter over the next call, as in Finagle.
Pass-through policies (deadline) return ``next(ctx)`` directly instead of awaiting it. Guards
(breaker, timeout, metrics, recovery: they act only before and after an attempt) and a
repeater just outside them (retry: it only decides whether to go again) are run by the
attempt engine (`_engine.py`) in the attempt's own frame when they sit next to it.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable
from typing import Any, ClassVar, Protocol

from ._calm import NEVER, Calm, Sink
from ._engine import Begin, Next, Steps, attempt_with, settle_or_defer
from .clock import SYSTEM_CLOCK, Clock
from .context import Call, Context
from .errors import RejectedError
from .events import EventBus
from .outcome import Outcome

__all__ = ["Begin", "Guard", "Next", "Pipeline", "Policy", "Repeater"]


class Policy(Protocol):
    """A filter over the next call."""

    def __call__(self, ctx: Context, next: Next) -> Awaitable[Outcome]: ...

    def describe(self) -> str: ...


class Guard:
    """A policy that acts only before an attempt and after it, never around it.

    `admit` may refuse the attempt with an outcome of its own (`ctx.attempt_started` is
    stamped before it is asked: a guard needs no clock read of its own); `settle` hears the outcome of
    every attempt it admitted (`reached` is False when something further in refused it before
    the upstream was called), a started stream's only once it has ended (see `_engine.settle_or_defer`);
    `abandon` is told when the attempt was cancelled from outside.
    A base class rather than a protocol: `Pipeline` recognises guards with `isinstance` and
    skips the hooks a guard leaves as these no-op defaults.
    """

    __slots__ = ()

    quiet_on_success: ClassVar[bool] = False
    """True when `settle` does nothing for an attempt that reached the upstream and succeeded:
    the engine then does not call it for one (most attempts)."""

    def caps_attempt(self) -> float | None:
        """The seconds `admit` caps each attempt at (or the context's soft cap, if nearer) when
        that is all it does; None otherwise. The engine then applies the cap itself instead of
        calling `admit`, when this is the innermost guard with an `admit`."""
        return None

    def admit(self, ctx: Context) -> Outcome | None:
        return None

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        return None

    def abandon(self, ctx: Context) -> None:
        return None

    def succeeded(self, ctx: Context, outcome: Outcome, reached: bool = True) -> None:
        """`settle` for an attempt that reached the upstream and succeeded, called as `settle`
        is (`reached` True): a guard overrides it when its success path alone is cheaper, as
        most attempts take it. The engine calls it in place of `settle` then; a started stream
        is still settled through `settle` when it ends."""
        self.settle(ctx, outcome, reached)

    def join_calm(self, calm: Calm) -> Sink | None:
        """Take part in `calm` (see `_calm`): call `calm.changed()` whenever `calm_into` may
        answer differently, drain it (`calm.drain()`) before any figure is read or written, and
        return what counts the successes it logs (None: they change nothing here), and say in
        `in_calm` that it did. A guard that does not override both keeps its pipeline from ever
        skipping its hooks."""
        raise NotImplementedError

    def in_calm(self) -> bool:
        """Whether it takes part in a calm already (then it joins no other)."""
        return False

    def calm_into(self, calm: Calm) -> bool:
        """Whether `admit` would let any attempt through untouched now, except for setting
        `ctx.permit` (then to `calm.permit`), and `succeeded` would change nothing but what
        the logged success tells the sink; a success slower than this guard's ordinary bound
        lowers `calm.slow` to it."""
        return False

    def __call__(self, ctx: Context, next: Next) -> Awaitable[Outcome]:
        """As an ordinary policy: where it does not sit next to the attempt (e.g. outside a
        bulkhead), or used on its own."""
        return _guarded(self, ctx, next)

    def describe(self) -> str:
        return type(self).__name__


async def _guarded(guard: Guard, ctx: Context, next: Next) -> Outcome:
    ctx.attempt_started = ctx.clock.now()
    refusal = guard.admit(ctx)
    if refusal is not None:
        return refusal
    ctx.attempt_ended = -1.0
    try:
        outcome = await next(ctx)
    except asyncio.CancelledError:
        guard.abandon(ctx)
        raise
    if ctx.attempt_ended >= 0:
        settle_or_defer(ctx, outcome, (guard.settle,))
    else:
        guard.settle(ctx, outcome, False)
    return outcome


class Repeater:
    """A policy that only decides, after a failed attempt, whether to run it again.

    `begin` is told once per call, with when its first attempt starts (the fused attempt skips it when a
    repeater leaves it as this no-op default); `again` hears each failed outcome with the
    number of attempts so far and that start, and answers the seconds to wait before the
    next one, or None to end with that outcome. A repeat that something further in
    refuses (`RejectedError`: breaker open, bulkhead full) ends the call with the previous
    outcome: the upstream's own last failure says more to the caller than "circuit open".
    A base class rather than a protocol: `Pipeline` recognises it with `isinstance` and runs
    it in the attempt's frame when only guards stand between it and the attempt.
    """

    __slots__ = ()

    def begin(self, ctx: Context, now: float) -> None:
        return None

    def again(self, ctx: Context, outcome: Outcome, tries: int, start: float) -> float | None:
        return None

    def begin_hook(self) -> Begin | None:
        """What the attempt engine calls as each call starts: `begin`, or None when it is the
        no-op default. A repeater may hand over a callable of its own that does the same
        with a frame less (a hook per request is ~3 % of the policies' cost, in process)."""
        return self.begin if _overrides(self, "begin") else None

    def __call__(self, ctx: Context, next: Next) -> Awaitable[Outcome]:
        """As an ordinary policy: where something other than guards sits between it and
        the attempt (e.g. a bulkhead), or used on its own."""
        return _repeated(self, ctx, next)

    def describe(self) -> str:
        return type(self).__name__


async def _repeated(repeater: Repeater, ctx: Context, next: Next) -> Outcome:
    start = ctx.clock.now()
    repeater.begin(ctx, start)
    outcome = await next(ctx)
    tries = 1
    while outcome.error is not None:
        delay = repeater.again(ctx, outcome, tries, start)
        if delay is None:
            break
        await ctx.clock.sleep(delay)
        tries += 1
        previous = outcome
        outcome = await next(ctx)
        if isinstance(outcome.error, RejectedError):
            return previous
    return outcome


def _overrides(policy: Guard | Repeater, hook: str) -> bool:
    base = Guard if isinstance(policy, Guard) else Repeater
    return getattr(type(policy), hook) is not getattr(base, hook)


def _steps(guards: tuple[Guard, ...], repeater: Repeater | None) -> Steps:
    """The hooks the engine calls: those the policies override, in the order it calls them."""
    numbered = list(enumerate(guards))
    admitting = [(i, g) for i, g in numbered if _overrides(g, "admit")]
    settling = [(i, g) for i, g in reversed(numbered) if _overrides(g, "settle")]
    cap = admitting[-1][1].caps_attempt() if admitting else None
    if cap is not None:
        admitting.pop()
    succeeding = [g for _, g in settling if not g.quiet_on_success]
    return Steps(
        admits=tuple((i, g.admit) for i, g in admitting),
        settles=tuple((i, g.settle) for i, g in settling),
        abandons=tuple(g.abandon for g in reversed(guards) if _overrides(g, "abandon")),
        begin=repeater.begin_hook() if repeater is not None else None,
        again=repeater.again if repeater is not None else None,
        succeeded=tuple(g.succeeded if _overrides(g, "succeeded") else g.settle for g in succeeding),
        cap=math.inf if cap is None else cap,
        calm=_calm_of([*dict.fromkeys([g for _, g in admitting] + succeeding)]),
    )


def _calm_of(members: list[Guard]) -> Calm:
    """A calm for `members` (the guards with an admit or a success hook), if every one of them
    can take part with the hooks it has (a subclass that overrides `admit`, `settle` or
    `succeeded` below the class that joined it to a calm does not inherit the join) and none
    takes part in another calm."""
    if not members or not all(_joins_calm(g) and not g.in_calm() for g in members):
        return NEVER
    calm = Calm(members)
    calm.sinks = tuple(sink for g in members if (sink := g.join_calm(calm)) is not None)
    calm.changed()
    return calm


def _joins_calm(guard: Guard) -> bool:
    mro = type(guard).__mro__
    owner = next(i for i, cls in enumerate(mro) if "join_calm" in vars(cls))
    if mro[owner] is Guard or type(guard).in_calm is Guard.in_calm:
        return False
    hooks = ("admit", "settle", "succeeded", "calm_into", "in_calm")
    return all(next(i for i, cls in enumerate(mro) if hook in vars(cls)) >= owner for hook in hooks)


_ONE_ATTEMPT = attempt_with(Steps())
"""One attempt with no guards: the terminal of a pipeline that names none."""


class Pipeline:
    """An ordered, frozen list of policies, outermost first.

    Usage::

        pipeline = Pipeline(Deadline(2.0), Retry(), CircuitBreakerPolicy(breaker), Timeout(0.5))
        outcome = await pipeline.execute(call_model, request)
    """

    __slots__ = ("engine", "honours_failover", "policies", "run", "terminal")

    def __init__(self, *policies: Policy, terminal: Next | None = None) -> None:
        """`terminal` is what the innermost policy calls: one attempt by default, or e.g. a
        fallback's `run` that spreads the request over several models."""
        self.policies: tuple[Policy, ...] = policies
        self.terminal = terminal
        handler: Next = terminal if terminal is not None else _ONE_ATTEMPT
        outer = len(policies)
        fused: tuple[Policy, ...] = ()
        if terminal is None:
            while outer and isinstance(policies[outer - 1], Guard):
                outer -= 1
            guards: tuple[Guard, ...] = policies[outer:]  # type: ignore[assignment]
            repeater = None
            if outer and isinstance(policies[outer - 1], Repeater):
                outer -= 1
                repeater = policies[outer]
            if outer < len(policies):
                handler = attempt_with(_steps(guards, repeater))  # type: ignore[arg-type]
                fused = policies[outer:]
        for policy in reversed(policies[:outer]):
            handler = _bind(policy, handler)
        self.engine = (
            f"attempt engine runs {' + '.join(p.describe().split('(')[0] for p in fused)} in one frame"
            if fused
            else "each policy in its own layer"
        )
        """Which policies the attempt engine runs in the attempt's own frame (for `describe`)."""
        self.honours_failover = outer == 0 and terminal is None
        """Whether `run` is the attempt engine itself, which awaits a context's `failover`
        when its attempts fail (a fallback's rest); a layer outside it would run that rest
        inside its own bounds."""
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
