import asyncio

from resilience_core import (
    Bulkhead,
    BulkheadConfig,
    BulkheadFullError,
    BulkheadRejected,
    Deadline,
    DeadlineExceededError,
    EventBus,
    Pipeline,
)
from tests.conftest import Scripted, run_on


def test_admits_up_to_limit_queues_then_rejects_fast(clock):
    bulkhead = Bulkhead(BulkheadConfig(max_concurrent=2, max_queue=1))
    upstream = Scripted(clock, [(1.0, "ok")])
    events = EventBus()
    seen = []
    events.subscribe(seen.append)
    pipeline = Pipeline(bulkhead)

    async def burst():
        return await asyncio.gather(
            *(pipeline.execute(upstream, {}, clock=clock, events=events) for _ in range(4))
        )

    outcomes = run_on(clock, burst)
    assert [o.ok for o in outcomes].count(True) == 3
    rejected = [o for o in outcomes if not o.ok]
    assert isinstance(rejected[0].error, BulkheadFullError)
    assert upstream.calls == [0.0, 0.0, 1.0]  # the queued call starts when a slot frees
    assert isinstance(seen[0], BulkheadRejected)
    assert bulkhead.active == 0 and bulkhead.queued == 0


def test_queued_call_gives_up_at_the_deadline(clock):
    bulkhead = Bulkhead(BulkheadConfig(max_concurrent=1, max_queue=5))
    upstream = Scripted(clock, [(10.0, "ok")])
    pipeline = Pipeline(Deadline(2.0), bulkhead)

    async def two():
        return await asyncio.gather(
            pipeline.execute(upstream, {}, clock=clock), pipeline.execute(upstream, {}, clock=clock)
        )

    _first, second = run_on(clock, two)
    assert isinstance(second.error, DeadlineExceededError)
    assert len(upstream.calls) == 1
    assert bulkhead.active == 0 and bulkhead.queued == 0
