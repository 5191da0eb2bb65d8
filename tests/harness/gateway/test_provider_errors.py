"""A provider's 4xx reaches the client in the provider's words, scrubbed of keys, URLs and
addresses and bounded; anything else stays a generic message (no upstream detail leaks)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.gateway.http.errors import routing_error
from harness.gateway.upstream import DETAIL_LIMIT, ProviderRejected, Upstream, scrubbed
from harness.gateway.upstream_client import UpstreamSession
from resilience_core import ModelCallError


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "This model's maximum context length is 8192 tokens",
            "This model's maximum context length is 8192 tokens",
        ),
        ("Incorrect API key provided: sk-proj-abcdef123456", "Incorrect API key provided: [redacted]"),
        ("see https://internal.example/v1?key=x for details", "see [redacted] for details"),
        ("upstream 10.1.2.3:8443 refused", "upstream [redacted] refused"),
        ("line one\nline two\x00", "line one line two"),
        (42, None),
        ("", None),
    ],
)
def test_a_provider_message_is_scrubbed(raw, shown):
    assert scrubbed(raw) == shown


def test_a_long_message_is_bounded():
    text = scrubbed("word " * 500)
    assert text is not None and len(text) == DETAIL_LIMIT and text.endswith("...")


def provider(status: int, error: dict) -> web.Application:
    async def chat(request: web.Request) -> web.Response:
        return web.json_response({"error": error}, status=status)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def call(status: int, error: dict) -> BaseException:
    async def main() -> BaseException:
        async with (
            TestServer(provider(status, error), host="127.0.0.1") as server,
            UpstreamSession() as session,
        ):
            upstream = Upstream(session, str(server.make_url("/v1")), "m", None)
            try:
                await upstream({"messages": [{"role": "user", "content": "hi"}]})
            except ModelCallError as exc:
                return exc
        raise AssertionError("the upstream call did not fail")

    return asyncio.run(main())


def test_a_4xx_with_a_message_reaches_the_client_scrubbed():
    error = call(
        400, {"message": "messages[0].content too long; key sk-live-0123456789", "param": "messages"}
    )
    assert isinstance(error, ProviderRejected)
    status, body, _ = routing_error(error)
    assert status == 400
    assert body["error"] == {
        "message": "messages[0].content too long; key [redacted]",
        "type": "invalid_request_error",
        "param": "messages",
        "code": None,
    }


def test_5xx_and_429_messages_stay_generic():
    for status in (500, 503, 429):
        error = call(status, {"message": "db at 10.0.0.5 is down"})
        assert type(error) is ModelCallError
        _, body, _ = routing_error(error)
        assert "10.0.0.5" not in str(body)
