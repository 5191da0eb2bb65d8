"""The gateway's own upstream client over simulated HTTP: every network fault reaches it in the
form a real socket would give (refused, reset, cut, silence, delay), and the endpoints' faults
play as they do on a real endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from harness.endpoints.model import EndpointFault, LatencyModel
from harness.gateway.upstream import StreamStart, Upstream
from harness.load.integrity import WHOLE, judge
from harness.sim.loop import START, run_virtual
from harness.sim.stack import SimStack
from resilience_core import ModelCallError

T = TypeVar("T")
QUICK = LatencyModel(first_token=0.05, first_token_jitter=0.0, tokens_per_second=100.0, token_rate_jitter=0.0)
"""Tokens 10 ms apart, the first after 50 ms: times below are exact."""
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def simulated(test: Callable[[SimStack, Upstream], Awaitable[T]]) -> T:
    """Run `test(stack, upstream of model-0)` in virtual time."""

    async def main() -> T:
        loop = asyncio.get_running_loop()
        stack = SimStack(["model-0"], QUICK, seed=3, clock=loop.time)
        upstream = Upstream(stack.session(), f"{stack.proxy_urls['model-0']}/v1", "model-0", None, 1.0)
        return await test(stack, upstream)

    return run_virtual(main)


async def whole_stream(upstream: Upstream) -> tuple[str, float]:
    """The streamed content and the virtual time it ended at."""
    start = await upstream({**CHAT, "stream": True})
    assert isinstance(start, StreamStart)
    pieces = [_content(p) for p in start.first]
    async for _payload, chunk in start.events(idle_timeout=1.0):
        pieces += [(c.get("delta") or {}).get("content") or "" for c in chunk["choices"]]
    return "".join(pieces), asyncio.get_running_loop().time() - START


def _content(payload: bytes) -> str:
    import json

    return "".join((c.get("delta") or {}).get("content") or "" for c in json.loads(payload)["choices"])


def test_a_healthy_model_answers_whole_in_its_latency_models_time():
    async def test(stack: SimStack, upstream: Upstream) -> tuple[Any, str, float]:
        answer = await upstream(CHAT)
        text, ended = await whole_stream(upstream)
        return answer, text, ended

    answer, text, ended = simulated(test)
    assert judge(answer["choices"][0]["message"]["content"]).integrity == WHOLE
    assert judge(text).integrity == WHOLE
    assert 0.1 < ended < 0.6  # two answers of 8-24 tokens at 10 ms, 50 ms to the first each


def test_a_proxy_that_is_down_refuses_the_connection():
    async def test(stack: SimStack, upstream: Upstream) -> BaseException:
        stack.toxics.set_enabled("model-0", False)
        with pytest.raises(ConnectionRefusedError) as caught:
            await upstream(CHAT)
        return caught.value

    simulated(test)


def test_disabling_a_proxy_cuts_the_streams_open_through_it():
    async def test(stack: SimStack, upstream: Upstream) -> None:
        start = await upstream({**CHAT, "stream": True})
        stack.toxics.set_enabled("model-0", False)
        with pytest.raises(ConnectionResetError):
            async for _ in start.events(idle_timeout=1.0):
                pass

    simulated(test)


def test_latency_delays_each_answer_by_its_milliseconds():
    async def test(stack: SimStack, upstream: Upstream) -> float:
        stack.toxics.add_toxic("model-0", "slow", "latency", {"latency": 300})
        loop = asyncio.get_running_loop()
        started = loop.time()
        await upstream(CHAT)
        return loop.time() - started

    took = simulated(test)
    assert 0.35 <= took < 0.65  # 50 ms first token + up to 240 ms of tokens, and 300 ms on the way back


def test_a_black_hole_is_silence_until_the_first_token_timeout():
    async def test(stack: SimStack, upstream: Upstream) -> float:
        stack.toxics.add_toxic("model-0", "hole", "timeout", {"timeout": 0})
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ModelCallError) as caught:
            await upstream({**CHAT, "stream": True})
        assert caught.value.status == 504
        return loop.time() - started

    assert simulated(test) == pytest.approx(1.0)


def test_reset_peer_and_limit_data_break_the_connection():
    async def test(stack: SimStack, upstream: Upstream) -> None:
        stack.toxics.add_toxic("model-0", "reset", "reset_peer", {"timeout": 0})
        with pytest.raises(ConnectionResetError):
            await upstream(CHAT)
        stack.toxics.remove_toxic("model-0", "reset")
        stack.toxics.add_toxic("model-0", "limit", "limit_data", {"bytes": 600})
        with pytest.raises(ConnectionResetError):
            await whole_stream(upstream)
        stack.toxics.reset()
        assert judge((await whole_stream(upstream))[0]).integrity == WHOLE

    simulated(test)


def test_a_toxic_applies_to_its_share_of_connections_only():
    async def test(stack: SimStack, upstream: Upstream) -> int:
        stack.toxics.add_toxic("model-0", "flaky", "reset_peer", {"timeout": 0}, toxicity=0.3)
        failed = 0
        for _ in range(200):
            try:
                await upstream(CHAT)
            except ConnectionResetError:
                failed += 1
        return failed

    assert 35 <= simulated(test) <= 85


def test_bandwidth_slows_a_stream_by_its_bytes():
    async def test(stack: SimStack, upstream: Upstream) -> tuple[float, float]:
        _, free = await whole_stream(upstream)
        stack.toxics.add_toxic("model-0", "thin", "bandwidth", {"rate": 1})  # 1 KB/s
        loop = asyncio.get_running_loop()
        started = loop.time()
        text, _ = await whole_stream(upstream)
        assert judge(text).integrity == WHOLE
        return free, loop.time() - started

    free, throttled = simulated(test)
    assert throttled > 2.0 > free  # some 2-5 KB of events at 1 KB/s


def test_endpoint_faults_play_as_on_a_real_endpoint():
    async def test(stack: SimStack, upstream: Upstream) -> None:
        stack.set_endpoint_fault("model-0", EndpointFault(error_rate=1.0, status=429, retry_after=7.0))
        with pytest.raises(ModelCallError) as caught:
            await upstream(CHAT)
        assert caught.value.status == 429 and caught.value.retry_after == 7.0
        stack.set_endpoint_fault("model-0", EndpointFault(cut_after_tokens=3))
        with pytest.raises(ConnectionResetError):
            await whole_stream(upstream)
        stack.set_endpoint_fault("model-0", EndpointFault(reset_before_headers=True))
        with pytest.raises(ConnectionResetError):
            await upstream(CHAT)
        stack.set_endpoint_fault("model-0", EndpointFault(malformed_json=True))
        with pytest.raises(ModelCallError, match="malformed JSON"):
            await upstream(CHAT)
        counts = stack.endpoint_counts()["model-0"]["per_second"]
        seen = {outcome for second in counts.values() for outcome in second}
        assert {"status_429", "stream_cut", "reset", "malformed_json"} <= seen

    simulated(test)
