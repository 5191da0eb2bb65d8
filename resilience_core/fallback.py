"""One fallback policy over a pool of candidates, driven by a selection plan."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from .context import Call, Context
from .errors import AllModelsFailedError, CircuitOpenError, ModelCallError, NoCandidateError
from .events import FallbackUsed, HedgeStarted
from .outcome import Outcome, Settleable, retry_after_of
from .predicates import NON_RETRYABLE, RATE_LIMITED, Predicate, on_code, on_status
from .selection import Candidate, Plan, Sequential

_Start = tuple[
    list[Candidate],
    str,
    Call,
    Callable[[Context], Awaitable[Outcome]],
    Callable[[Context, Outcome], Awaitable[Outcome]],
    int,
]
"""See `Fallback._kept_start`."""

FINAL = on_status(400, 401, 403, 422) & ~on_code("context_length_exceeded", "invalid_prefill")
"""Outcomes another model would answer the same way: returned as they are, no fallback.
The exceptions: a context-length error (a model with a larger window may succeed) and a refused
prefill (another model may continue the answer)."""

CandidateSource = Callable[[Context], Sequence[Candidate]] | Sequence[Candidate]
MAX_WAITS = 2
"""How often one request waits for a held (rate-limited) pool, whatever the waits add up to
(within its deadline), before it gives up..."""
SHORT_WAITS = 2.5
"""...and how many seconds of waiting in all it may go on past those, while the holds are
short: with two waits only, under 429s with Retry-After 0.5 s on a third of each model's
calls, about one request in 700 met three held rounds and failed with seconds of its deadline
left (the suite's rate-limits-everywhere read 99.79 % uptime). A model that always says 429
without a hint still gives up after two waits: 0.5 s, then 1 s, and the next, 2 s, is past
this even at its shortest after the +-20 % jitter (0.4 + 0.8 + 1.6 = 2.8 s; at 3.0 s one
request in a few hundred waited a third time)."""
MOST_WAITS = 8
"""The waits one request may make in any case: tiny holds cannot keep it going round."""
EARLY_PROBES = 3
"""Models one request may probe early (panic mode) before it fails: the one open longest, and
while those tried are still down, the next, as when models come back in another order than
they went (three covers a pool of three where the one back opened last, its late failures
reopening it). Bounded, so a pool that is all down costs each request at most three quick
refusals."""
EARLY_PROBE_GAP = 0.25
"""Seconds a model whose early probe failed is not probed early again: while a pool is all
down each model is probed at most four times a second, not once per request (at 40 requests/s
three dead models cost 120 probes, audit lines and refused connections a second, doubling the
gateway's CPU), and one that comes back is still found within a quarter second. A model
reopened by a call's late verdict, or whose probe succeeded, is not held back (explore found
such a model well)."""
PROBE_WAIT = 2.0
"""Seconds a request that every model failed waits for another request's probe of a half-open
model (its permits all taken) to decide, rather than fail while the model may be back."""


class Fallback:
    """Try candidates in the plan's order until one succeeds, within the request deadline.

    Candidates still in progressive restoration are tried first only for their admitted share
    of requests, and otherwise kept as reserves at the end. The fallback is the terminal
    step of a pipeline: `Pipeline(Deadline(5), terminal=Fallback(models, Hedged(0.2)).run)`.

    Usage::

        fallback = Fallback([model_a, model_b], Sequential())
        outcome = await fallback.run(ctx)
    """

    def __init__(
        self,
        candidates: CandidateSource,
        plan: Plan | None = None,
        *,
        final: Predicate = FINAL,
    ) -> None:
        self._source = candidates
        self.plan: Plan = plan if plan is not None else Sequential()
        self.final = final
        self.kept: list[Candidate] | None = None
        """An order to use instead of asking `candidates`: set by a subclass that knows when its
        pool stands still (see the router's), None for every request to order its own."""
        self._kept_start: _Start | None = None
        """How a request with no model of its own starts on the kept order: that order, its
        first candidate's name, call and run, the rest (for the first candidate's engine to
        await on failure) and how many remain. Made once per kept order rather than per
        request (a partial and a bound method each time were ~60 cache lines fetched cold per
        five-model request, in process), it also spares such a request `run`'s checks and
        `_aim_first`'s frame."""
        self.cap_kept = math.inf
        self.cap_kept_for = 0
        """Requests that may still take `cap_kept` as their first candidate's soft cap without
        asking `soft_cap`: a subclass whose cap moves slowly sets both (the router's pool
        does), sparing every request a call; 0 asks each time."""

    def candidates(self, ctx: Context) -> list[Candidate]:
        """This request's candidates, in order: admitted ones by plan, then reserves by plan.
        The list may be kept and handed to later requests (see `Plan`): read it, never change it."""
        source = self._source
        pool = source(ctx) if callable(source) else source
        primary: list[Candidate] = []
        reserve: list[Candidate] = []
        for candidate in pool:
            share = candidate.admission()
            if share >= 1.0 or ctx.rng.random() < share:
                primary.append(candidate)
            else:
                reserve.append(candidate)
        ordered = self.plan.order(primary, ctx.rng)
        if reserve:
            ordered += self.plan.order(reserve, ctx.rng)
        return ordered

    def run(self, ctx: Context) -> Awaitable[Outcome]:
        """The outcome of the first candidate to succeed (or why none did), its `attempts` the
        request's total. A plain function handing back the coroutine that does the work (one
        coroutine frame less per request): the candidates' order and the first one's soft cap
        are fixed when it is called, not when the coroutine starts."""
        ordered = self.kept
        start = self._kept_start
        if start is not None and start[0] is ordered and ctx.model is None:
            _, name, call, run, failover, alternatives = start  # `_aim_first`, inline
            if alternatives:
                if self.cap_kept_for > 0:
                    self.cap_kept_for -= 1
                    ctx.soft_cap = self.cap_kept
                else:
                    ctx.soft_cap = self.soft_cap(ctx, ordered[0])
                ctx.alternatives = alternatives
            ctx.model = name
            ctx.call = call
            ctx.attempt_deadline = math.inf
            ctx.failover = failover
            return run(ctx)
        if ordered is None:
            ordered = self.candidates(ctx)
        if not ordered:
            if self.rest(ctx) is not None:  # every model is held: wait for the first back
                return self._one_at_a_time(ctx, ordered)
            error = NoCandidateError("no model may take traffic now (isolated, drained or weight 0)")
            return _ready(Outcome(error=error))
        if len(ordered) == 1 and not self.waits_out_holds:
            # A lone candidate runs on the request's own context: a fork would only copy it,
            # and its outcome is what `_one_at_a_time` would return. No frame, no fork.
            self._aim_first(ctx, ordered)
            return ordered[0].run(ctx)
        if self.plan.hedge_delay != math.inf:
            return self._hedged_counted(ctx, ordered, self.plan.hedge_delay)
        first = ordered[0]
        if not getattr(first, "honours_failover", False):
            return self._one_at_a_time(ctx, ordered)
        # As in `_one_at_a_time`, but with no frame of ours around the first candidate: its
        # engine awaits the rest only when it fails (see `Context.failover`).
        own = self._aim_first(ctx, ordered)
        failover = partial(self._after_first_failed, ordered, own)
        if own is None and ordered is self.kept:  # the next such request starts at the top
            self._kept_start = (ordered, first.name, first.call, first.run, failover, len(ordered) - 1)
        ctx.failover = failover
        return first.run(ctx)

    def soft_cap(self, ctx: Context, candidate: Candidate) -> float:
        """Seconds `candidate` may take to its first answer while others remain (inf: no cap)."""
        return math.inf

    def rest(self, ctx: Context) -> float | None:
        """Seconds until a held (rate-limited) candidate may be asked again, when every
        candidate is held; None when one is free now or none is held."""
        return None

    def probe_early(self, ctx: Context, refused: Sequence[str]) -> str | None:
        """No candidate answered and `refused` turned the request away with an open circuit: the
        one of them to try now rather than fail the request, if any (a subclass that knows its
        breakers says which: one that closed meanwhile, or one it moves to half-open)."""
        return None

    def early_probe_failed(self, ctx: Context, name: str) -> None:
        """The early probe of `name` failed: a subclass may leave it alone for a while."""

    async def probe_verdict(self, ctx: Context, refused: Sequence[str]) -> str | None:
        """No candidate answered, early probes included, and some of `refused` are being probed
        by other requests right now: the one whose probe brings it back, if one does within
        `PROBE_WAIT` and the deadline (a subclass that knows its breakers waits for it)."""
        return None

    def _early_probe(self, ctx: Context, failures: dict[str, BaseException]) -> list[Candidate]:
        refused = _refused(failures)
        if not refused or not ctx.can_start_attempt():
            return []
        name = self.probe_early(ctx, refused)
        return self._named(ctx, name)

    async def _probed(self, ctx: Context, failures: dict[str, BaseException]) -> list[Candidate]:
        refused = _refused(failures)
        if not refused or not ctx.can_start_attempt():
            return []
        return self._named(ctx, await self.probe_verdict(ctx, refused))

    def _named(self, ctx: Context, name: str | None) -> list[Candidate]:
        return [c for c in self.candidates(ctx) if c.name == name] if name is not None else []

    waits_out_holds = False
    """Whether candidates may be held (rate limited, or slow), so a request may have to wait for
    one: then even a lone candidate runs through the loop that waits (a subclass says so)."""

    async def _one_at_a_time(self, ctx: Context, ordered: list[Candidate]) -> Outcome:
        # The first candidate runs on the request's own context, as a lone one does: most
        # requests never need a second, so they pay for no fork, no loop and no bookkeeping.
        if ordered:
            own = self._aim_first(ctx, ordered)
            outcome = await ordered[0].run(ctx)
            if outcome.error is None:
                outcome.attempts = ctx.attempts
                return outcome
            return await self._after_first_failed(ordered, own, ctx, outcome)
        return await self._after_first(ctx, ordered, None)

    def _aim_first(self, ctx: Context, ordered: list[Candidate]) -> str | None:
        """Point the request's own context at the first candidate, capped while others remain;
        the model it named before, for `_after_first_failed` to put back."""
        own = ctx.model
        first = ordered[0]
        if len(ordered) > 1:
            if self.cap_kept_for > 0:
                self.cap_kept_for -= 1
                ctx.soft_cap = self.cap_kept
            else:
                ctx.soft_cap = self.soft_cap(ctx, first)
            ctx.alternatives = len(ordered) - 1
        ctx.model = first.name  # what `Context.fork` would give a child, without the copy
        ctx.call = first.call
        ctx.attempt_deadline = math.inf
        return own

    def _after_first_failed(
        self, ordered: list[Candidate], own: str | None, ctx: Context, first: Outcome
    ) -> Awaitable[Outcome]:
        """The first candidate failed: a final outcome is the answer, else the rest are tried
        (awaited by `_one_at_a_time`, or by the candidate's engine as the context's failover)."""
        if self.final(first):
            first.attempts = ctx.attempts
            return _ready(first)
        ctx.soft_cap = math.inf
        ctx.alternatives = 0
        ctx.model = own
        return self._after_first(ctx, ordered, first)

    async def _after_first(self, ctx: Context, ordered: list[Candidate], first: Outcome | None) -> Outcome:
        """The rest of the candidates one at a time; when every model is held (rate limited),
        a wait for the first one back, if the deadline allows, and another round."""
        failures: dict[str, BaseException] = {}
        last = first
        if first is not None:
            assert first.error is not None
            failures[ordered[0].name] = first.error
        rest = ordered[1:]
        waits, waited = 0, 0.0
        while True:
            outcome = await self._each(ctx, rest, failures, last)
            if outcome is not None and (outcome.error is None or self.final(outcome)):
                outcome.attempts = ctx.attempts
                return outcome
            last = outcome or last
            delay = self.rest(ctx)
            if delay is None or not ctx.can_start_attempt(delay):
                break
            if waits >= MOST_WAITS or (waits >= MAX_WAITS and waited + delay > SHORT_WAITS):
                break
            await ctx.clock.sleep(delay)  # every candidate is held: the first back is the best bet
            waits, waited = waits + 1, waited + delay
            rest = self.candidates(ctx)
        for _ in range(EARLY_PROBES):
            early = self._early_probe(ctx, failures)  # a failed probe is no longer "refused"
            if not early:
                break
            outcome = await self._each(ctx, early, failures, last)
            if outcome is not None and (outcome.error is None or self.final(outcome)):
                outcome.attempts = ctx.attempts
                return outcome
            self.early_probe_failed(ctx, early[0].name)
            last = outcome or last
        back = await self._probed(ctx, failures)  # another request's probe may bring one back
        if back:
            outcome = await self._each(ctx, back, failures, last)
            if outcome is not None and (outcome.error is None or self.final(outcome)):
                outcome.attempts = ctx.attempts
                return outcome
            last = outcome or last
        outcome = _all_failed(failures, last, ctx.clock.now(), self.rest(ctx))
        outcome.attempts = ctx.attempts
        return outcome

    async def _each(
        self, ctx: Context, ordered: list[Candidate], failures: dict[str, BaseException], last: Outcome | None
    ) -> Outcome | None:
        """Try `ordered` one at a time, each on a context of its own; the first success or final
        outcome, else the last failure (None when none could start)."""
        outcome = None
        for index, candidate in enumerate(ordered):
            if not ctx.can_start_attempt():
                break
            reason = type(last.error).__name__ if last is not None else "held"
            previous = last.model if last is not None else None
            ctx.events.emit(FallbackUsed(ctx.clock.now(), ctx.model, previous, candidate.name, reason))
            child = ctx.fork(candidate.name, candidate.call)
            if index + 1 < len(ordered):
                child.soft_cap = self.soft_cap(ctx, candidate)
                child.alternatives = len(ordered) - index - 1
            try:
                outcome = await candidate.run(child)
            finally:
                ctx.attempts += child.attempts
            if outcome.error is None or self.final(outcome):
                return outcome
            assert outcome.error is not None
            failures[candidate.name] = outcome.error
            last = outcome
        return outcome

    async def _hedged_counted(self, ctx: Context, ordered: list[Candidate], delay: float) -> Outcome:
        outcome = await self._hedged(ctx, ordered, delay)
        error = outcome.error
        if error is not None:
            failures = error.failures if isinstance(error, AllModelsFailedError) else {"": error}
            early = self._early_probe(ctx, failures)
            if early:
                outcome = await self._hedged(ctx, early, delay)
            error = outcome.error
            if error is not None:
                failures = error.failures if isinstance(error, AllModelsFailedError) else failures
                back = await self._probed(ctx, failures)
                if back:
                    outcome = await self._hedged(ctx, back, delay)
        outcome.attempts = ctx.attempts  # the losers' attempts are added only as the race ends
        return outcome

    async def _hedged(self, ctx: Context, ordered: list[Candidate], delay: float) -> Outcome:
        loop = asyncio.get_running_loop()
        clock = ctx.clock
        running: dict[asyncio.Future[Outcome], Context] = {}
        finished: list[asyncio.Future[Outcome]] = []
        failures: dict[str, BaseException] = {}
        last: Outcome | None = None
        wake: asyncio.Future[None] = loop.create_future()

        def on_done(task: asyncio.Future[Outcome]) -> None:
            finished.append(task)
            _set(wake)

        def launch(candidate: Candidate) -> None:
            child = ctx.fork(candidate.name, candidate.call)
            task = asyncio.ensure_future(candidate.run(child))
            task.add_done_callback(on_done)
            running[task] = child

        pending = list(ordered)
        won = False
        try:
            while True:
                # Start at once: the first candidate, a replacement for a failed one when
                # nothing else runs, or everyone when racing (delay 0).
                while pending and (not running or delay == 0):
                    if (running or last is not None) and not ctx.can_start_attempt():
                        pending.clear()
                        break
                    if running:
                        ctx.events.emit(HedgeStarted(clock.now(), pending[0].name, 0.0))
                    elif last is not None:
                        reason = type(last.error).__name__
                        ctx.events.emit(
                            FallbackUsed(clock.now(), ctx.model, last.model, pending[0].name, reason)
                        )
                    launch(pending.pop(0))
                if not running:
                    break
                timer = None
                if pending:
                    timer = clock.call_at(clock.now() + delay, partial(_set, wake))
                await wake
                if timer is not None:
                    timer.cancel()
                wake = loop.create_future()
                if not finished:  # the hedge delay passed with no answer: start one more
                    if ctx.can_start_attempt():
                        ctx.events.emit(HedgeStarted(clock.now(), pending[0].name, delay))
                        launch(pending.pop(0))
                    else:
                        pending.clear()
                    continue
                while finished:
                    task = finished.pop(0)
                    child = running.pop(task)
                    ctx.attempts += child.attempts
                    outcome = task.result()
                    if outcome.error is None or self.final(outcome):
                        won = outcome.error is None
                        return outcome
                    failures[child.model or "?"] = outcome.error
                    last = outcome
        finally:
            for task, child in running.items():
                if not task.done():
                    child.lost_race = won  # another answered first: this one was the slower
                    task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
                for task, child in running.items():
                    ctx.attempts += child.attempts
                    _discard(task)  # answered in the same wake-up as the winner: thrown away, closed
        return _all_failed(failures, last, clock.now(), self.rest(ctx))

    def describe(self) -> str:
        return f"Fallback({type(self.plan).__name__})"


def _refused(failures: dict[str, BaseException]) -> list[str]:
    """The models that turned the request away with an open circuit."""
    return [name for name, error in failures.items() if isinstance(error, CircuitOpenError)]


def _set(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _discard(task: asyncio.Future[Outcome]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    value = task.result().value
    if isinstance(value, Settleable):
        value.discard()


def _all_failed(
    failures: dict[str, BaseException], last: Outcome | None, now: float = 0.0, rest: float | None = None
) -> Outcome:
    if last is None and rest is not None:
        # Every model is held (mostly: it asked us to slow down) past what the deadline allows:
        # the caller is told when to come back, as the model that held it told us.
        error = ModelCallError(
            "every model is held", status=429, code="rate_limit_exceeded", retry_after=rest
        )
        return Outcome(error=error)
    if last is None:
        return Outcome(error=AllModelsFailedError(failures))
    if failures and all(RATE_LIMITED(Outcome(error=error)) for error in failures.values()):
        # Every model asked us to slow down: the caller gets that, with the earliest time back.
        hints = [h for e in failures.values() if (h := retry_after_of(Outcome(error=e))) is not None]
        wait = rest if rest is not None else (min(hints) if hints else None)
        error = ModelCallError(
            "every model is rate limited", status=429, code="rate_limit_exceeded", retry_after=wait
        )
        return Outcome(error=error, model=last.model)
    client_mistake = all(NON_RETRYABLE(Outcome(error=error)) for error in failures.values())
    if len(failures) == 1 or client_mistake:
        return last  # every model refused the request itself: that is the caller's answer, not an outage
    return Outcome(error=AllModelsFailedError(failures))


async def _ready(outcome: Outcome) -> Outcome:
    return outcome
