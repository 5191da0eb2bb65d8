"""The circuit breaker as a pure state machine: no I/O, no awaits, time passed in."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .._calm import Calm
from ..events import CircuitStateChanged, Event
from .state import CLOSED, HALF_OPEN, ISOLATED, OPEN, CircuitState, check_transition
from .window import CountWindow, Snapshot, TimeWindow, Window

DEFAULT_CONSECUTIVE_FAILURES = 5
DEFAULT_FAILURE_RATE = 0.5
DEFAULT_MINIMUM_CALLS = 10
DEFAULT_WINDOW_SIZE = 50
DEFAULT_WAIT_DURATION = 5.0
DEFAULT_HALF_OPEN_PROBES = 3

NO_PERMIT = -1
"""What `try_acquire` returns when the call must not go through."""
PASSED_MOST = 32
"""Fast successes noted before they are folded into the window even if nothing reads it."""


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    """When to trip and how to probe for recovery.

    Trips on `consecutive_failures` in a row, or on a failure that leaves the window holding
    at least `minimum_calls` with the failure rate at its threshold (or a slow call, with the
    share of calls slower than `slow_call_duration` at its). A success never trips it, as
    Polly's advanced breaker judges the rate on failures only: in a time window the failures
    of a fault that has ended still count for its whole length, and the first answers of a
    model that came back (the evidence that it is well) tripped the circuit on them (in
    `jitter`, 6 old cuts and 4 new answers: "failure rate 60 % over 10 calls", 1.5 s after
    the fault ended, and the model took 4 s more to get its traffic back). After `wait_duration` it lets
    `half_open_probes` calls through; all must succeed to close. Each failed probe multiplies
    the next wait by `wait_backoff`, up to `max_wait_duration`, as Envoy lengthens an ejection
    each time a host is ejected again: every probe is a caller's request that pays the failure
    (a model resetting every answer cost a probe a second, 7 % of a fault window's requests).

    Usage::

        CircuitBreakerConfig(consecutive_failures=3, failure_rate=0.5, window_seconds=10.0)
    """

    consecutive_failures: int = DEFAULT_CONSECUTIVE_FAILURES
    failure_rate: float = DEFAULT_FAILURE_RATE
    slow_call_rate: float = 1.0
    slow_call_duration: float = math.inf
    minimum_calls: int = DEFAULT_MINIMUM_CALLS
    window_size: int = DEFAULT_WINDOW_SIZE
    """Count-based window length; ignored when `window_seconds` is set."""
    window_seconds: float | None = None
    """Use a time-based window of this many seconds instead of a count-based one."""
    wait_duration: float = DEFAULT_WAIT_DURATION
    half_open_probes: int = DEFAULT_HALF_OPEN_PROBES
    wait_backoff: float = 1.0
    """The next wait's factor after a failed probe; 1.0 waits `wait_duration` every time."""
    max_wait_duration: float = math.inf
    """The longest a backed-off wait grows to (never shorter than `wait_duration`)."""

    def __post_init__(self) -> None:
        problems = []
        if self.consecutive_failures < 1:
            problems.append("consecutive_failures must be >= 1")
        if not 0 < self.failure_rate <= 1:
            problems.append("failure_rate must be in (0, 1]")
        if not 0 < self.slow_call_rate <= 1:
            problems.append("slow_call_rate must be in (0, 1]")
        if self.minimum_calls < 1:
            problems.append("minimum_calls must be >= 1")
        if self.window_size < 1:
            problems.append("window_size must be >= 1")
        if self.window_seconds is not None and self.window_seconds <= 0:
            problems.append("window_seconds must be > 0")
        if self.wait_duration < 0:
            problems.append("wait_duration must be >= 0")
        if self.half_open_probes < 1:
            problems.append("half_open_probes must be >= 1")
        if self.wait_backoff < 1:
            problems.append("wait_backoff must be >= 1")
        if self.max_wait_duration < 0:
            problems.append("max_wait_duration must be >= 0")
        if problems:
            raise ValueError("CircuitBreakerConfig: " + "; ".join(problems))

    def new_window(self) -> Window:
        if self.window_seconds is not None:
            return TimeWindow(self.window_seconds)
        return CountWindow(self.window_size)


class CircuitBreaker:
    """closed / open / half-open / isolated, with permits tied to the state they were given in.

    A permit is the breaker's generation number: a result that comes back after the state has
    moved on (a slow call admitted while closed finishing after the trip) is ignored instead of
    being miscounted as a half-open probe.
    """

    __slots__ = (
        "_consecutive",
        "_emit",
        "_probe_successes",
        "_probes_in_flight",
        "calm",
        "config",
        "failed_probes",
        "generation",
        "name",
        "opened_at",
        "passed",
        "state",
        "window",
    )

    def __init__(
        self,
        name: str,
        config: CircuitBreakerConfig | None = None,
        *,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config if config is not None else CircuitBreakerConfig()
        self.window = self.config.new_window()
        """Read it through `snapshot`, which counts the noted successes (`passed`) first."""
        self.state = CLOSED
        self.opened_at = -math.inf
        self._emit = emit
        self.generation = 0
        """Changes on every transition; a permit is the generation it was granted in. Read it,
        never write it (an attribute, not a property: the policy reads it on every call)."""
        self._consecutive = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        self.failed_probes = 0
        """Probes failed in a row since the circuit last closed: the wait's backoff exponent."""
        self.passed: list[float] = []
        """When the fast successes of closed-state permits not yet in the window ended, oldest
        first: the policy (`CircuitBreakerPolicy.succeeded`) and the calm (`take_log`) append,
        anything that reads the window or moves the state folds them in first (`fold`). A fast
        success never trips the circuit, so only a later result or transition needs them
        counted."""
        self.calm: Calm | None = None
        """The pipeline's calm this breaker takes part in (`CircuitBreakerPolicy.join_calm`):
        told of every transition, drained before the window is read or written."""

    @property
    def wait(self) -> float:
        """How long the circuit stays open this time."""
        config = self.config
        longest = max(config.max_wait_duration, config.wait_duration)
        return min(config.wait_duration * config.wait_backoff ** min(self.failed_probes, 64), longest)

    def try_acquire(self, now: float) -> int:
        """A permit (>= 0) if a call may go through now, else NO_PERMIT."""
        state = self.state
        if state is CLOSED:
            return self.generation
        if state is OPEN:
            if now < self.opened_at + self.wait:
                return NO_PERMIT
            self._transition(HALF_OPEN, now, "wait duration elapsed")
            state = HALF_OPEN
        if state is HALF_OPEN:
            used = self._probes_in_flight + self._probe_successes
            if used < self.config.half_open_probes:
                self._probes_in_flight += 1
                return self.generation
        return NO_PERMIT

    def release(self, permit: int) -> None:
        """Give back a permit whose call was cancelled before it produced a result."""
        if permit == self.generation and self.state is HALF_OPEN:
            self._probes_in_flight -= 1

    def fold(self) -> None:
        """Count the pending fast successes (`passed`, and its calm's log) in the window,
        oldest first."""
        if self.calm is not None:
            self.calm.drain()
        passed = self.passed
        if passed:
            self.window.passed(passed)
            self._consecutive = 0
            passed.clear()

    def take_log(self, log: list[float]) -> None:
        """A calm's logged successes (`_calm.Sink`): fast, in the closed state."""
        self.passed.extend(log[1::3])
        self.fold()

    def snapshot(self, now: float) -> Snapshot:
        """The window's counts now, pending fast successes included."""
        self.fold()
        return self.window.snapshot(now)

    def on_result(self, permit: int, failed: bool, duration: float, now: float) -> None:
        """Record a finished call admitted with `permit`."""
        if permit != self.generation:
            return
        self.fold()
        state = self.state
        if state is CLOSED:
            slow = duration >= self.config.slow_call_duration
            self.window.record(failed, slow, now)
            if failed:
                self._consecutive += 1
            else:
                self._consecutive = 0
                if not slow:
                    return  # a fast success never trips (see CircuitBreakerConfig)
            reason = self._trip_reason(self.window.snapshot(now), failed, slow)
            if reason is not None:
                self._transition(OPEN, now, reason)
        elif state is HALF_OPEN:
            self._probes_in_flight -= 1
            if failed:
                self.failed_probes += 1
                self._transition(OPEN, now, "probe failed")
            else:
                self._probe_successes += 1
                if self._probe_successes >= self.config.half_open_probes:
                    self._transition(CLOSED, now, "probes succeeded")

    def _trip_reason(self, snap: Snapshot, failed: bool, slow: bool) -> str | None:
        config = self.config
        if self._consecutive >= config.consecutive_failures:
            return f"{self._consecutive} consecutive failures"
        if snap.calls >= config.minimum_calls:
            if failed and snap.failure_rate >= config.failure_rate:
                return f"failure rate {snap.failure_rate:.0%} over {snap.calls} calls"
            if slow and config.slow_call_duration < math.inf and snap.slow_rate >= config.slow_call_rate:
                return f"slow-call rate {snap.slow_rate:.0%} over {snap.calls} calls"
        return None

    def expedite(self, now: float, reason: str) -> bool:
        """Open -> half-open before the wait is over (no model may take the request otherwise);
        whether it did."""
        if self.state is not OPEN:
            return False
        self._transition(HALF_OPEN, now, reason)
        return True

    def trip(self, now: float, reason: str) -> None:
        """Open now (used by recovery when a restored model fails again)."""
        if self.state is not OPEN and self.state is not ISOLATED:
            self._transition(OPEN, now, reason)

    def isolate(self, now: float, reason: str) -> None:
        """Force open until restored by hand."""
        if self.state is not ISOLATED:
            self._transition(ISOLATED, now, reason)

    def restore(self, now: float, reason: str) -> None:
        """Close by hand, from any state."""
        if self.state is not CLOSED:
            self._transition(CLOSED, now, reason)

    def _transition(self, target: CircuitState, now: float, reason: str) -> None:
        self.fold()
        source = self.state
        check_transition(source, target)
        self.state = target
        self.generation += 1
        self._probes_in_flight = 0
        self._probe_successes = 0
        if target is OPEN:
            self.opened_at = now
        if target is CLOSED:
            self.failed_probes = 0
            self.window.reset()
            self._consecutive = 0
        if self.calm is not None:
            self.calm.changed()
        if self._emit is not None:
            self._emit(CircuitStateChanged(now, self.name, source.value, target.value, reason))
