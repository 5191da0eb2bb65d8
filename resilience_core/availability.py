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

from .context import Context
from .errors import AttemptTimeoutError
from .outcome import Outcome, retry_after_of
from .policy import Guard
from .predicates import RATE_LIMITED

DEFAULT_BACKOFF = 0.5
DEFAULT_BACKOFF_CAP = 8.0
DEFAULT_LONGEST_HINT = 60.0


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

    def __post_init__(self) -> None:
        if self.factor < 1 or self.floor <= 0 or self.ceiling < self.floor:
            raise ValueError("SlowFirstAnswer needs factor >= 1 and 0 < floor <= ceiling")

    def cap(self, fastest_bound: float | None) -> float:
        if fastest_bound is None:
            return math.inf
        return min(max(self.floor, self.factor * fastest_bound), self.ceiling)


class Holder(Protocol):
    """What a hold guard tells: the router, which keeps the candidate order and the holds."""

    def hold(self, model: str, until: float) -> None: ...


class Holds(Guard):
    """Holds its model when it should not be asked for a while: rate limited (for its
    Retry-After or the backoff), or cut at the soft cap on its first answer (slow now: for
    `SlowFirstAnswer.hold` seconds, so the next requests do not each pay the cap until the
    breaker has counted enough of them). A success ends the 429 streak."""

    __slots__ = ("holder", "model", "rate_limits", "slow", "streak")

    def __init__(
        self, model: str, holder: Holder, rate_limits: RateLimitHold | None, slow: SlowFirstAnswer | None
    ) -> None:
        self.model = model
        self.holder = holder
        self.rate_limits = rate_limits
        self.slow = slow
        self.streak = 0

    def settle(self, ctx: Context, outcome: Outcome, reached: bool) -> None:
        if not reached:
            return
        error = outcome.error
        if error is None:
            self.streak = 0
        elif self.rate_limits is not None and RATE_LIMITED(outcome):
            self.streak += 1
            wait = self.rate_limits.seconds(outcome, self.streak, ctx.rng)
            self.holder.hold(self.model, ctx.attempt_ended + wait)
        elif self.slow is not None and ctx.soft_cap != math.inf and isinstance(error, AttemptTimeoutError):
            self.holder.hold(self.model, ctx.attempt_ended + self.slow.hold)

    def describe(self) -> str:
        return f"Holds({self.model})"
