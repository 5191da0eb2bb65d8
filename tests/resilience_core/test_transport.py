"""The official SDKs' connection errors and timeouts count as such: a dead model behind
`AsyncOpenAI` trips its breaker and is failed over, and the SDK's Retry-After is honoured."""

from __future__ import annotations

import asyncio
import socket

import httpx2
import openai
import pytest

from resilience_core import (
    CLASSES,
    TRANSIENT,
    CircuitBreakerConfig,
    ModelRouter,
    ModelSpec,
    Outcome,
    RouterConfig,
    openai_chat,
)
from resilience_core.outcome import retry_after_of
from resilience_core.transport import transport_failure

REQUEST = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def raised(error: BaseException, cause: BaseException | None) -> BaseException:
    try:
        raise error from cause
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("error", "kind", "failure_class"),
    [
        (raised(openai.APIConnectionError(request=REQUEST), ConnectionRefusedError()), "refused", "refused"),
        (raised(openai.APIConnectionError(request=REQUEST), ConnectionResetError()), "connection", "reset"),
        (openai.APITimeoutError(request=REQUEST), "timeout", "timeout"),
        (raised(httpx2.ConnectError("boom"), ConnectionRefusedError(111, "refused")), "refused", "refused"),
        (httpx2.ReadTimeout("slow"), "timeout", "timeout"),
        (httpx2.RemoteProtocolError("cut"), "connection", "reset"),
    ],
)
def test_sdk_transport_errors_are_classified_like_the_builtin_ones(error, kind, failure_class):
    assert transport_failure(error) == kind
    outcome = Outcome(error=error)
    assert TRANSIENT(outcome)
    assert CLASSES[failure_class](outcome)
    assert [name for name, test in CLASSES.items() if test(outcome)] == [failure_class]


def test_lookalikes_and_client_mistakes_are_not_transport_failures():
    class APIConnectionError(Exception):  # same name, not an SDK's
        pass

    assert transport_failure(APIConnectionError()) is None
    assert transport_failure(ValueError()) is None
    bad = openai.BadRequestError("no", response=httpx2.Response(400, request=REQUEST), body=None)
    assert not TRANSIENT(Outcome(error=bad))


def test_the_sdks_retry_after_headers_are_read():
    def limited(headers: dict[str, str]) -> openai.RateLimitError:
        response = httpx2.Response(429, request=REQUEST, headers=headers)
        return openai.RateLimitError("slow down", response=response, body=None)

    assert retry_after_of(Outcome(error=limited({"retry-after-ms": "1500"}))) == 1.5
    assert retry_after_of(Outcome(error=limited({"retry-after": "2"}))) == 2.0
    assert retry_after_of(Outcome(error=limited({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}))) is None
    assert TRANSIENT(Outcome(error=limited({})))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_model_behind_the_real_sdk_trips_its_breaker_and_is_failed_over():
    """Real `AsyncOpenAI`, a real refused connection on 127.0.0.1: no mock in the path."""
    calls = {"dead": 0}
    dead_client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="-")
    dead_call = openai_chat(dead_client, "model-0")

    async def dead(request):
        calls["dead"] += 1
        return await dead_call(request)

    async def backup(request):
        return {"content": "from the backup"}

    async def main() -> list[tuple[str | None, int]]:
        router = ModelRouter(
            [ModelSpec("primary", dead, timeout=5.0), ModelSpec("backup", backup, priority=1, timeout=5.0)],
            RouterConfig(deadline=20.0, breaker=CircuitBreakerConfig(consecutive_failures=3)),
        )
        answers = [await router.call({"messages": [{"role": "user", "content": "hi"}]}) for _ in range(3)]
        assert str(router.models["primary"].breaker.state) == "open"
        await dead_client.close()
        return [(answer.model, answer.attempts) for answer in answers]

    answers = asyncio.run(main())
    assert [model for model, _ in answers] == ["backup"] * 3
    assert calls["dead"] <= 3  # refused connections: failed over, the SDK's own retries off
