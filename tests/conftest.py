"""Shared helpers: run coroutines on a fake clock, and scripted upstream calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import pytest

from resilience_core import ModelCallError
from resilience_core.context import Context
from resilience_core.policy import Next
from resilience_core.testing import FakeClock

T = TypeVar("T")


def run_on(clock: FakeClock, factory: Callable[[], Awaitable[T]]) -> T:
    """Run `factory()` in a fresh loop, driving `clock` until it completes."""

    async def main() -> T:
        return await clock.run(factory())

    return asyncio.run(main())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Scripted:
    """An upstream that plays a script: each item is a value, an exception, or a
    (delay, value-or-exception) pair; the last item repeats. Records call times."""

    def __init__(self, clock: FakeClock, script: Iterable[Any], name: str = "m") -> None:
        self.clock = clock
        self.script = list(script)
        self.name = name
        self.calls: list[float] = []

    async def __call__(self, request: Any) -> Any:
        self.calls.append(self.clock.now())
        index = min(len(self.calls) - 1, len(self.script) - 1)
        item = self.script[index]
        delay = 0.0
        if isinstance(item, tuple):
            delay, item = item
        if delay:
            await self.clock.sleep(delay)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, type) and issubclass(item, BaseException):
            raise item()
        return item


def error(status: int, **kwargs: Any) -> ModelCallError:
    return ModelCallError(f"status {status}", status=status, **kwargs)


def recorded(bus_owner: Any) -> list[Any]:
    """Subscribe a list to an object's event bus and return it."""
    events: list[Any] = []
    bus_owner.events.subscribe(events.append)
    return events


class PassThrough:
    """Neither guard nor repeater: placed innermost it keeps guards and a retry out of the
    attempt's frame, so a test can run the same policies both ways."""

    def __call__(self, ctx: Context, next: Next) -> Awaitable[Any]:
        return next(ctx)

    def describe(self) -> str:
        return "PassThrough"
