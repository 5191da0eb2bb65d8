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

    def close(self) -> None:
        """Release what holds the value open (a connection); called when it is thrown away."""
        return None

    def discard(self) -> None:
        """Thrown away unused (a hedge that answered second): settled as answered, then closed."""
        self.settle(False)
        self.close()


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
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    return _retry_after_header(getattr(getattr(source, "response", None), "headers", None))


def _retry_after_header(headers: object) -> float | None:
    """The hint of a wrapped client's HTTP response (openai's and httpx's errors keep it there):
    `retry-after-ms` (OpenAI's) first, then `retry-after` in seconds; an HTTP date is ignored."""
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = getter(name)
        try:
            seconds = float(raw) * scale
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None
