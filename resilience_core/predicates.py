"""Which outcomes a policy handles, as small predicates combined with `|`, `&` and `~`.

Usage::

    retryable = (on(TimeoutError) | on_status(429, 500, 503)) & ~NON_RETRYABLE
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .outcome import Outcome, status_of
from .transport import transport_failure


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


def transport(*kinds: str) -> Predicate:
    """Outcomes whose error is an HTTP client's timeout, refused or broken connection
    (`transport.transport_failure`: openai, anthropic, httpx, aiohttp), by class name."""
    wanted = frozenset(kinds)
    return Predicate(lambda o: transport_failure(o.error) in wanted, f"transport{tuple(sorted(wanted))}")


TRANSIENT = (
    on(TimeoutError, ConnectionError, OSError)
    | transport("timeout", "refused", "connection")
    | Predicate(_transient_status, "on_status(408, 425, 429, 5xx)")
) & ~NON_RETRYABLE
"""The default for retry and breakers: timeouts, broken connections, 5xx and 429."""


RATE_LIMITED = on_status(429)
"""The provider asked the caller to slow down: a question of availability, not of health."""
TIMED_OUT = on(TimeoutError) | transport("timeout") | on_status(408, 504)
"""No answer (or no first token) in time: a silent route stays silent, so try the next one."""
REFUSED = on(ConnectionRefusedError) | transport("refused")
"""Nobody listens: the host or its port is down."""
RESET = (on(ConnectionError, OSError) | transport("connection")) & ~REFUSED & ~TIMED_OUT
"""The connection broke (reset, closed mid-answer): often a blip worth one more try."""
SERVER_ERROR = Predicate(
    lambda o: (status_of(o) or 0) >= 500 and status_of(o) != 504, "on_status(5xx but 504)"
)
"""The provider answered with a 5xx."""
CLASSES: dict[str, Predicate] = {
    "rate_limited": RATE_LIMITED,
    "timeout": TIMED_OUT,
    "refused": REFUSED,
    "reset": RESET,
    "server_error": SERVER_ERROR,
}
"""Failure classes by name, for configuration: which retry on the same model, which fail over."""


def classes(*names: str) -> Predicate:
    """The union of the named failure classes (`CLASSES`), e.g. `classes("server_error", "reset")`."""
    unknown = [name for name in names if name not in CLASSES]
    if unknown:
        raise ValueError(f"unknown failure class {unknown[0]!r}; one of {', '.join(CLASSES)}")
    if not names:
        return Predicate(lambda o: False, "nothing")
    found = CLASSES[names[0]]
    for name in names[1:]:
        found = found | CLASSES[name]
    return found & ~NON_RETRYABLE
