"""The result of a call as a value, so policies inspect failures without try/except chains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outcome:
    """What one attempt, or a whole policy stack, produced: a value or an error.

    `model` is who answered, `attempts` counts upstream calls made for it, and `degraded`
    marks a last-resort answer that did not come from a healthy model.
    """

    value: Any = None
    error: BaseException | None = None
    model: str | None = None
    attempts: int = 0
    degraded: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        """Return the value or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value


class Settleable:
    """Base for values whose real result is known only later, such as a started stream.

    Breaker, metrics and recovery hold their judgement until `settle(failed)` is called, so a
    stream cut mid-answer counts against its model like any failed call. A base class rather
    than a protocol: `isinstance` on it is the cheapest check for the success path.
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[[bool], None]] = []
        self._settled = False

    def on_settled(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    def settle(self, failed: bool) -> None:
        """Report how it ended; later calls are ignored."""
        if not self._settled:
            self._settled = True
            for callback in self._callbacks:
                callback(failed)


def status_of(outcome: Outcome) -> int | None:
    """The HTTP-like status carried by an outcome's error or value, if any."""
    source: object = outcome.error if outcome.error is not None else outcome.value
    status = getattr(source, "status", None)
    if status is None:
        status = getattr(source, "status_code", None)
    return status if isinstance(status, int) else None


def retry_after_of(outcome: Outcome) -> float | None:
    """A Retry-After hint in seconds carried by the outcome, if any."""
    source: object = outcome.error if outcome.error is not None else outcome.value
    value = getattr(source, "retry_after", None)
    return float(value) if isinstance(value, int | float) and value >= 0 else None
