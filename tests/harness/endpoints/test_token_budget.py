"""A provider's tokens-per-minute budget: 429 with Retry-After and OpenAI's x-ratelimit headers
once a minute's tokens are spent, and a fresh budget the next minute."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from harness.endpoints.app import build_app
from harness.endpoints.behaviour import EndpointState
from harness.endpoints.model import EndpointFault, LatencyModel

FAST = LatencyModel(
    first_token=0.0, first_token_jitter=0.0, tokens_per_second=1e6, tokens_min=10, tokens_max=10
)


def test_the_budget_refuses_what_does_not_fit_until_the_minute_is_over():
    now = [100.0]
    state = EndpointState("m", FAST, seed=1, clock=lambda: now[0])
    state.set_fault(EndpointFault(tokens_per_minute=50))
    assert state.spend_tokens(30, 50) is None
    assert state.spend_tokens(30, 50) == (60.0, 20)  # refused, nothing spent
    assert state.spend_tokens(20, 50) is None
    now[0] += 59.0
    assert state.spend_tokens(1, 50) == (1.0, 0)
    now[0] += 1.0
    assert state.spend_tokens(50, 50) is None  # a new minute


def test_the_endpoint_answers_429_with_the_headers_a_client_backs_off_on():
    async def main() -> list[tuple[int, dict[str, str], dict]]:
        state = EndpointState("m", FAST, seed=1)
        state.set_fault(EndpointFault(tokens_per_minute=40))
        async with TestClient(TestServer(build_app(state))) as client:
            answers = []
            for _ in range(4):
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                response = await client.post("/v1/chat/completions", json=body)
                answers.append((response.status, dict(response.headers), await response.json()))
            return answers

    answers = asyncio.run(main())
    statuses = [status for status, _, _ in answers]
    assert statuses[0] == 200 and 429 in statuses  # each answer spends its prompt and 10 words
    _, headers, body = next(a for a in answers if a[0] == 429)
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert int(headers["Retry-After"]) >= 59
    assert headers["x-ratelimit-limit-tokens"] == "40"
    assert int(headers["x-ratelimit-remaining-tokens"]) < 40
    assert headers["x-ratelimit-reset-tokens"].endswith("s")
