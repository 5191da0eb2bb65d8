"""One fallback policy over a pool of candidates, driven by a selection plan."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from .context import Context
from .errors import AllModelsFailedError, NoCandidateError
from .events import FallbackUsed, HedgeStarted
from .outcome import Outcome
from .predicates import NON_RETRYABLE, Predicate, on_code, on_status
from .selection import Candidate, Hedged, Plan, Sequential, Weighted

FINAL = on_status(400, 401, 403, 422) & ~on_code("context_length_exceeded")
"""Outcomes another model would answer the same way: returned as they are, no fallback.
A context-length error is the exception: a model with a larger window may succeed."""

CandidateSource = Callable[[Context], Sequence[Candidate]] | Sequence[Candidate]


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
        request's total. A plain function handing back the coroutine that does the work: one
        coroutine frame less per request."""
        ordered = self.kept
        if ordered is None:
            ordered = self.candidates(ctx)
        if not ordered:
            error = NoCandidateError("no model may take traffic now (isolated, drained or weight 0)")
            return _ready(Outcome(error=error))
        if len(ordered) == 1:
            # A lone candidate runs on the request's own context: a fork would only copy it,
            # and its outcome is what `_one_at_a_time` would return. No frame, no fork.
            return _aimed_at(ctx, ordered[0]).run(ctx)
        if self.plan.hedge_delay == math.inf:
            return self._one_at_a_time(ctx, ordered)
        return self._hedged_counted(ctx, ordered, self.plan.hedge_delay)

    async def _one_at_a_time(self, ctx: Context, ordered: list[Candidate]) -> Outcome:
        # The first candidate runs on the request's own context, as a lone one does: most
        # requests never need a second, so they pay for no fork and no bookkeeping.
        own = ctx.model
        outcome = await _aimed_at(ctx, ordered[0]).run(ctx)
        if outcome.error is None or self.final(outcome):
            outcome.attempts = ctx.attempts
            return outcome
        ctx.model = own
        failures: dict[str, BaseException] = {ordered[0].name: outcome.error}
        last = outcome
        for candidate in ordered[1:]:
            if not ctx.can_start_attempt():
                break
            reason = type(last.error).__name__
            ctx.events.emit(FallbackUsed(ctx.clock.now(), ctx.model, last.model, candidate.name, reason))
            child = ctx.fork(candidate.name, candidate.call)
            try:
                outcome = await candidate.run(child)
            finally:
                ctx.attempts += child.attempts
            if outcome.error is None or self.final(outcome):
                outcome.attempts = ctx.attempts
                return outcome
            failures[candidate.name] = outcome.error
            last = outcome
        outcome = _all_failed(failures, last)
        outcome.attempts = ctx.attempts
        return outcome

    async def _hedged_counted(self, ctx: Context, ordered: list[Candidate], delay: float) -> Outcome:
        outcome = await self._hedged(ctx, ordered, delay)
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
                        return outcome
                    failures[child.model or "?"] = outcome.error
                    last = outcome
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
                for child in running.values():
                    ctx.attempts += child.attempts
        return _all_failed(failures, last)

    def describe(self) -> str:
        return f"Fallback({type(self.plan).__name__})"


def _set(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _all_failed(failures: dict[str, BaseException], last: Outcome | None) -> Outcome:
    if last is None:
        return Outcome(error=AllModelsFailedError(failures))
    client_mistake = all(NON_RETRYABLE(Outcome(error=error)) for error in failures.values())
    if len(failures) == 1 or client_mistake:
        return last  # every model refused the request itself: that is the caller's answer, not an outage
    return Outcome(error=AllModelsFailedError(failures))


class SequentialFallback(Fallback):
    """BIP-03's sequential fallback: priority order, one at a time."""

    def __init__(self, candidates: CandidateSource, *, final: Predicate = FINAL) -> None:
        super().__init__(candidates, Sequential(), final=final)


class ParallelFallback(Fallback):
    """BIP-03's parallel fallback: race candidates, starting one more every `delay` seconds."""

    def __init__(self, candidates: CandidateSource, delay: float = 0.0, *, final: Predicate = FINAL):
        super().__init__(candidates, Hedged(delay), final=final)


class WeightedFallback(Fallback):
    """BIP-03's weighted fallback: order drawn from live weights."""

    def __init__(
        self,
        candidates: CandidateSource,
        *,
        hedge_delay: float = math.inf,
        final: Predicate = FINAL,
    ) -> None:
        super().__init__(candidates, Weighted(hedge_delay), final=final)


async def _ready(outcome: Outcome) -> Outcome:
    return outcome


def _aimed_at(ctx: Context, candidate: Candidate) -> Candidate:
    """Point the request's own context at `candidate` (what `Context.fork` would give a child)."""
    ctx.model = candidate.name
    ctx.call = candidate.call
    ctx.attempt_deadline = math.inf
    return candidate
