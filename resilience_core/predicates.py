"""Which outcomes a policy handles, as small predicates combined with `|`, `&` and `~`.

Usage::

    retryable = (on(TimeoutError) | on_status(429, 500, 503)) & ~NON_RETRYABLE
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .outcome import Outcome, status_of


@dataclass(frozen=True, slots=True)
class Predicate:
    """A named test on an outcome."""

    test: Callable[[Outcome], bool]
    name: str

    def __call__(self, outcome: Outcome) -> bool:
        return self.test(outcome)

    def __or__(self, other: Predicate) -> Predicate:
        return Predicate(lambda o: self.test(o) or other.test(o), f"({self.name} | {other.name})")

    def __and__(self, other: Predicate) -> Predicate:
        return Predicate(lambda o: self.test(o) and other.test(o), f"({self.name} & {other.name})")

    def __invert__(self) -> Predicate:
        return Predicate(lambda o: not self.test(o), f"~{self.name}")

    def __repr__(self) -> str:
        return self.name


def on(*error_types: type[BaseException]) -> Predicate:
    """Outcomes whose error is an instance of one of `error_types`."""
    names = ",".join(t.__name__ for t in error_types)
    return Predicate(lambda o: isinstance(o.error, error_types), f"on({names})")


def on_status(*statuses: int) -> Predicate:
    """Outcomes carrying one of these HTTP-like statuses (on the error or the value)."""
    wanted = frozenset(statuses)
    return Predicate(lambda o: status_of(o) in wanted, f"on_status{tuple(sorted(wanted))}")


def on_code(*codes: str) -> Predicate:
    """Outcomes whose error carries one of these provider error codes."""
    wanted = frozenset(codes)
    return Predicate(lambda o: getattr(o.error, "code", None) in wanted, f"on_code{tuple(sorted(wanted))}")


def failed() -> Predicate:
    """Any outcome with an error."""
    return Predicate(lambda o: o.error is not None, "failed")


NON_RETRYABLE = on_status(400, 401, 403, 404, 413, 422) | on_code(
    "context_length_exceeded", "content_filter", "invalid_request_error"
)
"""Client-side mistakes: repeating them cannot succeed and only burns quota."""

_RETRYABLE_4XX = frozenset({408, 425, 429})


def _transient_status(outcome: Outcome) -> bool:
    status = status_of(outcome)
    return status is not None and (500 <= status <= 599 or status in _RETRYABLE_4XX)


TRANSIENT = (
    on(TimeoutError, ConnectionError, OSError) | Predicate(_transient_status, "on_status(408, 425, 429, 5xx)")
) & ~NON_RETRYABLE
"""The default for retry and breakers: timeouts, broken connections, 5xx and 429."""
