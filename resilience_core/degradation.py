"""Graceful degradation: a last-resort answer, always marked as degraded."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from .context import Context
from .events import DegradedAnswerServed
from .outcome import Outcome
from .policy import Next
from .predicates import NON_RETRYABLE, Predicate


class DegradedSource(Protocol):
    """Where a last-resort answer comes from."""

    def answer(self, request: Any) -> Any | None:
        """The degraded answer for `request`, or None when there is none."""
        ...

    def remember(self, request: Any, value: Any) -> None:
        """See a good answer (a cache keeps it; a static answer ignores it)."""
        ...


class StaticAnswer:
    """The same canned answer for every request.

    Usage::

        Degrade(StaticAnswer({"content": "The assistant is busy; please try again shortly."}))
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def answer(self, request: Any) -> Any | None:
        return self.value

    def remember(self, request: Any, value: Any) -> None:
        return None


class CachedAnswer:
    """The last good answer to an equal request, from a bounded LRU cache.

    Usage::

        Degrade(CachedAnswer(key=lambda request: request["messages"][-1]["content"]))
    """

    def __init__(self, key: Callable[[Any], Hashable] = lambda r: r, *, size: int = 1024) -> None:
        self.key = key
        self.size = size
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()

    def answer(self, request: Any) -> Any | None:
        key = self.key(request)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return None

    def remember(self, request: Any, value: Any) -> None:
        key = self.key(request)
        self._cache[key] = value
        self._cache.move_to_end(key)
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)


class Degrade:
    """When everything inside failed, serve the source's answer marked `degraded=True`.

    Client errors (`NON_RETRYABLE`: a bad request, context too long) pass through unchanged:
    a canned answer would hide the caller's own mistake.
    """

    __slots__ = ("source", "when")

    def __init__(self, source: DegradedSource, *, when: Predicate = ~NON_RETRYABLE) -> None:
        self.source = source
        self.when = when

    async def __call__(self, ctx: Context, next: Next) -> Outcome:
        outcome = await next(ctx)
        if outcome.error is None:
            if not outcome.degraded:
                self.source.remember(ctx.request, outcome.value)
            return outcome
        if not self.when(outcome):
            return outcome
        value = self.source.answer(ctx.request)
        if value is None:
            return outcome
        reason = f"{type(outcome.error).__name__}: {outcome.error}"
        ctx.events.emit(DegradedAnswerServed(ctx.clock.now(), outcome.model, reason))
        return Outcome(value, model="degraded", attempts=outcome.attempts, degraded=True)

    def describe(self) -> str:
        return f"Degrade({type(self.source).__name__})"
