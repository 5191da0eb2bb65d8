"""Wait and stop rules as tiny composable objects, after tenacity.

Usage::

    wait = exponential(0.1, cap=2.0) + jitter(0.05)
    stop = stop_after_attempt(4) | stop_after_delay(10.0)
    wait(attempt=2, rng=random.Random(1))   # seconds before the third attempt
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Wait:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""

    compute: Callable[[int, random.Random], float]
    name: str
    upper: float
    """The largest value this rule can return; lets properties check jitter bounds."""

    def __call__(self, attempt: int, rng: random.Random) -> float:
        return self.compute(attempt, rng)

    def __add__(self, other: Wait) -> Wait:
        return Wait(
            lambda a, r: self.compute(a, r) + other.compute(a, r),
            f"{self.name} + {other.name}",
            self.upper + other.upper,
        )

    def __repr__(self) -> str:
        return self.name


def constant(seconds: float) -> Wait:
    """Always the same wait."""
    if seconds < 0:
        raise ValueError("constant wait must be >= 0")
    return Wait(lambda a, r: seconds, f"constant({seconds})", seconds)


def exponential(base: float, *, factor: float = 2.0, cap: float = 30.0) -> Wait:
    """`base * factor**(attempt-1)`, capped: 0.1, 0.2, 0.4, ... up to `cap`."""
    if base < 0 or factor < 1 or cap < 0:
        raise ValueError("exponential needs base >= 0, factor >= 1, cap >= 0")

    def compute(attempt: int, rng: random.Random) -> float:
        exponent = min(attempt - 1, 64)
        return float(min(cap, base * factor**exponent))

    return Wait(compute, f"exponential({base}, factor={factor}, cap={cap})", cap)


def jitter(max_seconds: float) -> Wait:
    """A uniform random extra in [0, max_seconds], so clients do not retry in lockstep."""
    if max_seconds < 0:
        raise ValueError("jitter must be >= 0")
    return Wait(lambda a, r: r.uniform(0.0, max_seconds), f"jitter({max_seconds})", max_seconds)


@dataclass(frozen=True, slots=True)
class Stop:
    """Whether to give up after `attempt` attempts and `elapsed` seconds."""

    test: Callable[[int, float], bool]
    name: str

    def __call__(self, attempt: int, elapsed: float) -> bool:
        return self.test(attempt, elapsed)

    def __or__(self, other: Stop) -> Stop:
        return Stop(lambda a, e: self.test(a, e) or other.test(a, e), f"{self.name} | {other.name}")

    def __and__(self, other: Stop) -> Stop:
        return Stop(lambda a, e: self.test(a, e) and other.test(a, e), f"{self.name} & {other.name}")

    def __repr__(self) -> str:
        return self.name


def stop_after_attempt(attempts: int) -> Stop:
    """Stop once `attempts` attempts have been made (1 = never retry)."""
    if attempts < 1:
        raise ValueError("stop_after_attempt needs at least 1")
    return Stop(lambda a, e: a >= attempts, f"stop_after_attempt({attempts})")


def stop_after_delay(seconds: float) -> Stop:
    """Stop once `seconds` have passed since the first attempt started."""
    return Stop(lambda a, e: e >= seconds, f"stop_after_delay({seconds})")
