"""Retry with backoff, jitter, Retry-After and a retry budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from .backoff import Stop, Wait, exponential, jitter, stop_after_attempt
from .context import Context
from .events import RetryBudgetExhausted, RetryScheduled
from .outcome import Outcome, retry_after_of
from .policy import Begin, Repeater
from .predicates import TRANSIENT, Predicate

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_WAIT = exponential(0.1, cap=2.0) + jitter(0.05)
MAX_RETRY_AFTER = 60.0
"""A Retry-After longer than this is not waited for: the deadline or a fallback serves better."""


class RetryBudget:
    """Caps retries as a share of calls, so a failing upstream is not hammered.

    Each call deposits `ratio` tokens and time adds `min_per_second`; a retry spends one
    token. With ratio 0.2, a sustained outage costs at most ~1.2 upstream calls per request.
    Deposits are only counted as they come (every call makes one) and credited when a retry
    asks to spend: the balance then is what crediting each deposit at once would give (up to
    float rounding), since credits only ever add and the cap is a minimum.

    Usage::

        Retry(budget=RetryBudget(ratio=0.2, min_per_second=1.0))
    """

    __slots__ = ("_balance", "_credited_to", "_last", "_uncredited", "cap", "min_per_second", "ratio")

    def __init__(self, ratio: float = 0.2, *, min_per_second: float = 1.0, cap: float = 10.0):
        if not 0 <= ratio <= 1 or min_per_second < 0 or cap < 1:
            raise ValueError("RetryBudget needs 0 <= ratio <= 1, min_per_second >= 0, cap >= 1")
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.cap = cap
        self._balance = cap
        self._uncredited = 0
        """Deposits since the balance was last brought up to date."""
        self._last: float | None = None
        """When the latest deposit was made: time earns tokens up to there."""
        self._credited_to = 0.0

    def deposit(self, now: float) -> None:
        """Count one call made at `now` (credited, with the time since, when a retry asks)."""
        self.begin(None, now)

    def begin(self, ctx: Context | None, now: float) -> None:
        """`deposit` in the shape of `Repeater.begin`: the retry hands it to the attempt engine
        as its hook (`Retry.begin_hook`), one frame less on every request."""
        if self._last is None:
            self._credited_to = now  # time counts from the first call
        self._uncredited += 1
        self._last = now

    def try_spend(self) -> bool:
        """Take one retry's worth of budget if there is one."""
        balance = self.balance()
        if balance >= 1.0:
            self._balance = balance - 1.0
            return True
        return False

    def balance(self) -> float:
        """Tokens available now: every deposit and the time between them credited, up to the cap."""
        last = self._last
        if last is not None:
            earned = self.ratio * self._uncredited + (last - self._credited_to) * self.min_per_second
            self._uncredited = 0
            self._credited_to = last
            balance = self._balance + earned
            self._balance = balance if balance < self.cap else self.cap
        return self._balance


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How often and how patiently to retry.

    Usage::

        RetryConfig(stop=stop_after_attempt(4) | stop_after_delay(5), wait=exponential(0.05))
    """

    stop: Stop = field(default_factory=lambda: stop_after_attempt(DEFAULT_MAX_ATTEMPTS))
    wait: Wait = DEFAULT_WAIT
    handle: Predicate = TRANSIENT
    honour_retry_after: bool = True
    last_candidate_only: bool = False
    """Retry only where no other model is left to try: failing over is quicker than waiting to
    ask a flaky model again, and a lone model still gets its second chance."""


class Retry(Repeater):
    """Repeat the inner call while its outcome is retryable, the stop rule allows, and the
    request deadline can still cover the wait plus a useful attempt."""

    __slots__ = ("budget", "config")

    def __init__(self, config: RetryConfig | None = None, *, budget: RetryBudget | None = None):
        self.config = config if config is not None else RetryConfig()
        self.budget = budget

    def begin(self, ctx: Context, now: float) -> None:
        if self.budget is not None:
            self.budget.begin(ctx, now)

    def begin_hook(self) -> Begin | None:
        """The budget's own hook: `begin` would only forward to it (None without a budget),
        unless a subclass changed `begin`."""
        if type(self).begin is not Retry.begin:
            return super().begin_hook()
        return self.budget.begin if self.budget is not None else None

    def again(self, ctx: Context, outcome: Outcome, tries: int, start: float) -> float | None:
        config = self.config
        if not config.handle(outcome) or (config.last_candidate_only and ctx.alternatives):
            return None
        clock = ctx.clock
        if config.stop(tries, clock.now() - start):
            return None
        delay = config.wait(tries, ctx.rng)
        hint = retry_after_of(outcome) if config.honour_retry_after else None
        if hint is not None:
            if hint > MAX_RETRY_AFTER:
                return None
            delay = max(delay, hint)
        if not ctx.can_start_attempt(delay):
            return None
        if self.budget is not None and not self.budget.try_spend():
            ctx.events.emit(RetryBudgetExhausted(clock.now(), ctx.model, tries))
            return None
        reason = type(outcome.error).__name__
        ctx.events.emit(RetryScheduled(clock.now(), ctx.model, tries, delay, reason))
        return delay

    def describe(self) -> str:
        return f"Retry({self.config.stop!r}, wait={self.config.wait!r})"
