"""The endpoint's clock for counts and answers starts at the run's t0, set before it: the load
already sends at t0, so a reset then wiped the first answers (ten with fifty models to reset,
read as forged ids in the control of fifty-model-pool)."""

from __future__ import annotations

import asyncio
import time

from aiohttp.test_utils import TestClient, TestServer

from harness.endpoints.app import CONTROL_PREFIX, build_app
from harness.endpoints.behaviour import EndpointState
from harness.endpoints.model import LatencyModel

FAST = LatencyModel(
    first_token=0.0, first_token_jitter=0.0, tokens_per_second=1e6, tokens_min=5, tokens_max=5
)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_a_reset_ahead_of_t0_keeps_what_comes_before_it_in_negative_seconds():
    async def main() -> tuple[dict, list[dict]]:
        state = EndpointState("m", FAST, seed=1)
        async with TestClient(TestServer(build_app(state))) as client:
            await client.post("/v1/chat/completions", json=BODY)  # before the reset: wiped
            t0 = time.time() + 0.6
            await client.post(f"{CONTROL_PREFIX}/counts/reset", json={"t0": t0})
            await client.post("/v1/chat/completions", json=BODY)  # a probe before t0
            await asyncio.sleep(max(0.0, t0 - time.time()) + 0.05)
            await client.post("/v1/chat/completions", json=BODY)  # the run's first request
            counts = await (await client.get(f"{CONTROL_PREFIX}/counts")).json()
            answers = await (await client.get(f"{CONTROL_PREFIX}/answers")).json()
        return counts, answers["answers"]

    counts, answers = asyncio.run(main())
    per_second = {int(second): sum(outcomes.values()) for second, outcomes in counts["per_second"].items()}
    assert per_second == {-1: 1, 0: 1}
    assert len(answers) == 2
    assert answers[0]["t"] < 0 <= answers[1]["t"] < 0.5


def test_a_reset_without_t0_counts_from_now():
    state = EndpointState("m", FAST, seed=1, clock=lambda: 10.0)
    state.reset_counts()
    assert state.now() == 0.0
