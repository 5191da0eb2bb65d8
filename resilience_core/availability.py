"""When a healthy model may not be asked right now, and how long a first answer may take.

A rate limit (429) is not a failure of the model: it is alive and asks us to slow down. So it
never counts against the circuit; the model is *held* until its Retry-After (or a backoff that
doubles while 429s keep coming), requests go to the models that can answer now, and only when
every model is held does a request wait, for the first one back, if its deadline allows.

Slowness is judged while a call is still waiting: a candidate with others behind it gets a
*soft cap* on its time to first answer, a few times what the fastest model usually takes (the
smoothed first-answer time plus four deviations, as TCP sets its retransmission timeout). A call
past it is cut and counted as a timeout in flight, so the breaker and the next requests react
during a brown-out, not after it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from ._calm import Calm
from .context import Context
from .errors import AttemptTimeoutError, RejectedError
from .outcome import Outcome, retry_after_of
from .policy import Guard
from .predicates import RATE_LIMITED

DEFAULT_BACKOFF = 0.5
DEFAULT_BACKOFF_CAP = 8.0
DEFAULT_LONGEST_HINT = 60.0
RATE_LIMITED_HOLD = "rate limited"
SLOW_HOLD = "slow to its first answer"
TRIAL_ANSWERS = 3
"""Answers in time in a row that end a slow model's trial: one could be luck (a model whose
answers take anything from 0 to 300 ms extra answers a third of its calls within the cap)."""


@dataclass(frozen=True, slots=True)
class RateLimitHold:
    """How long a rate-limited model is held: its Retry-After (up to `longest_hint`), else
    `backoff` doubling with each 429 in a row, up to `backoff_cap`, with +-20 % jitter.

    Usage::

        RouterConfig(rate_limits=RateLimitHold(backoff=0.5, backoff_cap=8.0))
    """

    backoff: float = DEFAULT_BACKOFF
    backoff_cap: float = DEFAULT_BACKOFF_CAP
    longest_hint: float = DEFAULT_LONGEST_HINT

    def __post_init__(self) -> None:
        if not 0 < self.backoff <= self.backoff_cap or self.longest_hint <= 0:
            raise ValueError("RateLimitHold needs 0 < backoff <= backoff_cap and longest_hint > 0")

    def seconds(self, outcome: Outcome, streak: int, rng: random.Random) -> float:
        hint = retry_after_of(outcome)
        if hint is not None:
            return min(hint, self.longest_hint)
        wait: float = min(self.backoff * 2.0 ** max(streak - 1, 0), self.backoff_cap)
        return wait * rng.uniform(0.8, 1.2)


@dataclass(frozen=True, slots=True)
class SlowFirstAnswer:
    """The soft cap on a candidate's time to first answer while others remain: `factor` times
    the fastest model's usual bound (smoothed time + 4 deviations), at least `floor` seconds,
    at most `ceiling`. With no figures yet there is no cap.

    Usage::

        RouterConfig(slow_first_answer=SlowFirstAnswer(factor=3.0, floor=0.1))
    """

    factor: float = 3.0
    floor: float = 0.1
    ceiling: float = math.inf
    hold: float = 5.0
    """Seconds a model cut at the cap gets no new requests (latency outlier ejection)."""
    hold_backoff: float = 1.0
    """The next hold's factor when the model is cut again right after a hold (it is still
    slow); 1.0 holds `hold` seconds every time."""
    max_hold: float = math.inf
    """The longest a backed-off hold grows to (never shorter than `hold`)."""

    def __post_init__(self) -> None:
        if self.factor < 1 or self.floor <= 0 or self.ceiling < self.floor:
            raise ValueError("SlowFirstAnswer needs factor >= 1 and 0 < floor <= ceiling")
        if self.hold_backoff < 1 or self.max_hold < 0:
            raise ValueError("SlowFirstAnswer needs hold_backoff >= 1 and max_hold >= 0")

    def cap(self, fastest_bound: float | None) -> float:
        if fastest_bound is None:
            return math.inf
        return min(max(self.floor, self.factor * fastest_bound), self.ceiling)

    def hold_for(self, again: int) -> float:
        """Seconds of the hold after `again` holds in a row ended with the model still slow."""
        longest = max(self.max_hold, self.hold)
        return min(self.hold * self.hold_backoff ** min(again, 64), longest)


class Holder(Protocol):
    """What a hold guard tells: the router, which keeps the candidate order and the holds."""

    def hold(self, model: str, until: float, reason: str = "") -> None: ...


class Holds(Guard):
    """Holds its model when it should not be asked for a while: rate limited (for its
    Retry-After or the backoff), or cut at the soft cap on its first answer (slow now: for
    `SlowFirstAnswer.hold` seconds, so the next requests do not each pay the cap until the
    breaker has counted enough of them). A success ends the 429 streak."""

    __slots__ = (
        "calm",
        "holder",
        "model",
        "on_trial",
        "rate_limits",
        "slow",
        "slow_again",
        "slow_until",
        "streak",
        "told",
        "trial",
        "trial_answers",
    )

    def __init__(
        self, model: str, holder: Holder, rate_limits: RateLimitHold | None, slow: SlowFirstAnswer | None
    ) -> None:
        self.model = model
        self.holder = holder
        self.rate_limits = rate_limits
        self.slow = slow
        self.streak = 0
        self.slow_again = 0
        """Slow holds in a row that ended with the model still slow (the backoff's exponent)."""
        self.slow_until = -math.inf
        """When the last slow hold ends (or ended)."""
        self.on_trial = False
        """Cut as slow and not yet answered in time since: one call at a time may find out."""
        self.trial: Context | None = None
        """The call finding out, while it runs."""
        self.trial_answers = 0
        """Trial calls answered in time in a row (`TRIAL_ANSWERS` end the trial)."""
        self.calm: Calm | None = None
        """The pipeline's calm these holds take part in (`join_calm`)."""
        self.told = False
        """What the calm last heard from `calm_into`."""

    def admit(self, ctx: Context) -> Outcome | None:
        """While the model is on trial, one call at a time that could be cut tries it and the
        others go on to the next model, until `TRIAL_ANSWERS` in a row answer within the cap:
        when a hold ended, every request that arrived before the first was cut paid the cap
        (six to seven at 40 requests/s in `jitter`), and now one does. The last candidate
        (no cap) is never turned away."""
        if not self.on_trial or ctx.soft_cap == math.inf:
            return None
        trial = self.trial
        if trial is None:
            self.trial = ctx
        elif trial is not ctx:
            error = RejectedError(f"{self.model} was slow: another request is trying it", self.model)
            return Outcome(error=error, model=self.model, attempts=ctx.attempts)
        return None

    def abandon(self, ctx: Context) -> None:
        if ctx is self.trial:
            self.trial = None
            self._tell_calm()

    def join_calm(self, calm: Calm) -> None:
        self.calm = calm

    def in_calm(self) -> bool:
        return self.calm is not None

    def calm_into(self, calm: Calm) -> bool:
        """No trial and no streak: `admit` lets everyone through, `succeeded` does nothing."""
        self.told = not self.on_trial and self.trial is None and not self.streak
        return self.told

    def _tell_calm(self) -> None:
        calm = self.calm
        if (
            calm is not None
            and (not self.on_trial and self.trial is None and not self.streak) is not self.told
        ):
            calm.changed()

    def succeeded(self, ctx: Context, outcome: Outcome, reached: bool = True) -> None:
        """`settle` for a success: most meet no trial and no streak of rate limits to end."""
        if ctx is self.trial or self.streak:
            self.settle(ctx, outcome, reached)

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        self._settle(ctx, outcome, reached)
        self._tell_calm()

    def _settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        if ctx is self.trial:
            self.trial = None
            if reached and outcome.error is None:
                self.trial_answers += 1
                self.on_trial = self.trial_answers < TRIAL_ANSWERS  # else the model is back
        if not reached:
            return
        error = outcome.error
        if error is None:
            self.streak = 0
        elif self.rate_limits is not None and RATE_LIMITED(outcome):
            self.streak += 1
            wait = self.rate_limits.seconds(outcome, self.streak, ctx.rng)
            self.holder.hold(self.model, ctx.attempt_ended + wait, RATE_LIMITED_HOLD)
        elif self.slow is not None and ctx.soft_cap != math.inf and isinstance(error, AttemptTimeoutError):
            self._hold_slow(ctx.attempt_started, ctx.attempt_ended, self.slow)

    def _hold_slow(self, started: float, ended: float, slow: SlowFirstAnswer) -> None:
        """Hold a model cut at the soft cap, longer each time it is still slow when a hold ends
        (`SlowFirstAnswer.hold_backoff`): the first requests after a hold meet the model
        before any is cut, so each hold's end cost a burst of capped calls (in `jitter`, a
        third of the fault window's slow answers came from one such end). The calls that were
        already under way when a hold began were cut by the same slowness: they extend it,
        they do not lengthen the next. After a hold's own length of calls not cut, the model
        counts as well again and the next hold starts short."""
        length = slow.hold_for(self.slow_again)
        if started >= self.slow_until:  # asked after the last hold ended: a new hold
            again = self.slow_again + 1 if started - self.slow_until < length else 0
            self.slow_again = again
            length = slow.hold_for(again)
        self.slow_until = max(self.slow_until, ended + length)
        self.on_trial, self.trial_answers = True, 0
        self.holder.hold(self.model, ended + length, SLOW_HOLD)

    def describe(self) -> str:
        return f"Holds({self.model})"
