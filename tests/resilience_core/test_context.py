"""`Context.fork` copies what it should and resets the rest: the field lists stay complete."""

import math
import random

from resilience_core import Context, EventBus, Pipeline, Timeout
from resilience_core.context import INHERITED, PER_ATTEMPT
from resilience_core.testing import FakeClock
from tests.conftest import run_on


async def _call(request):
    return request


async def _other(request):
    return None


def _busy_parent() -> Context:
    parent = Context({"q": 1}, _call, clock=FakeClock(), rng=random.Random(3), events=EventBus(), model="a")
    parent.deadline = 12.5
    parent.min_attempt = 0.25
    parent.attempt_deadline = 3.0
    parent.attempts = 4
    parent.attempt_started = 1.0
    parent.attempt_ended = 2.0
    parent.permit = 7
    return parent


def test_every_slot_is_either_inherited_per_attempt_or_given():
    given = {"model", "call"}
    assert set(Context.__slots__) == set(INHERITED) | set(PER_ATTEMPT) | given
    assert not set(INHERITED) & set(PER_ATTEMPT)


def test_a_child_shares_the_inherited_fields_and_starts_the_rest_afresh():
    parent = _busy_parent()
    child = parent.fork("b", _other)
    fresh = Context(None, _other)
    for name in INHERITED:
        assert getattr(child, name) is getattr(parent, name) or getattr(child, name) == getattr(parent, name)
    for name in PER_ATTEMPT:
        assert getattr(child, name) == getattr(fresh, name), name
    assert (child.model, child.call) == ("b", _other)
    assert child.attempt_deadline == math.inf


def test_a_clock_that_cannot_be_weakly_referenced_still_gets_its_deadlines(clock):
    """A user's clock with __slots__ (no __weakref__) must not break attempt timeouts."""

    class SlottedClock:
        __slots__ = ("inner",)

        def __init__(self, inner):
            self.inner = inner

        def now(self):
            return self.inner.now()

        async def sleep(self, seconds):
            await self.inner.sleep(seconds)

        def call_at(self, when, callback):
            return self.inner.call_at(when, callback)

    slotted = SlottedClock(clock)

    async def slow(request):
        await slotted.sleep(5.0)
        return "late"

    async def main():
        return await Pipeline(Timeout(1.0)).execute(slow, None, clock=slotted)

    outcome = run_on(clock, main)
    assert outcome.error is not None and clock.now() < 2.0
