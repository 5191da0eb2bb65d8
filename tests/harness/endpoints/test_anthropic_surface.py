"""The simulated endpoints speak Anthropic's Messages API too, checked with Anthropic's own SDK
over real HTTP on 127.0.0.1: answers whose identity the harness can check, streams of its
named events, 529 overloaded, in-band `error` events, prefill continuation and tool use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestServer

from harness.endpoints.answers import Answer
from harness.endpoints.app import build_app
from harness.endpoints.behaviour import EndpointState
from harness.endpoints.model import EndpointFault, LatencyModel
from harness.load.integrity import WHOLE, judge

FAST = LatencyModel(
    first_token=0.0, first_token_jitter=0.0, tokens_per_second=1e5, tokens_min=6, tokens_max=6
)
ASK = [{"role": "user", "content": "hello"}]
TOOL = {"name": "lookup", "description": "finds things", "input_schema": {"type": "object"}}


def with_endpoint(
    check: Callable[[anthropic.AsyncAnthropic, EndpointState], Awaitable[Any]],
    fault: EndpointFault | None = None,
) -> Any:
    async def main() -> Any:
        state = EndpointState("claude-sim", FAST, seed=4)
        if fault is not None:
            state.set_fault(fault)
        server = TestServer(build_app(state), host="127.0.0.1")
        await server.start_server()
        client = anthropic.AsyncAnthropic(
            base_url=str(server.make_url("")).rstrip("/"), api_key="test", max_retries=0, timeout=10
        )
        try:
            return await check(client, state)
        finally:
            await client.close()
            await server.close()

    return asyncio.run(main())


def test_a_message_and_its_stream_carry_whole_answers_the_endpoint_logged():
    async def check(client: anthropic.AsyncAnthropic, state: EndpointState) -> None:
        message = await client.messages.create(model="claude-sim", max_tokens=64, messages=ASK)
        assert message.type == "message" and message.stop_reason == "end_turn"
        assert message.content[0].type == "text"
        assert judge(message.content[0].text).integrity == WHOLE
        assert message.usage.output_tokens == 6
        async with client.messages.stream(model="claude-sim", max_tokens=64, messages=ASK) as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_message()
        assert kinds[:2] == ["message_start", "content_block_start"]
        assert kinds[-2:] == ["message_delta", "message_stop"]
        assert final.stop_reason == "end_turn"
        assert judge(final.content[0].text.strip()).integrity == WHOLE
        assert [a["complete"] for a in state.answers] == [True, True]

    with_endpoint(check)


def test_overloaded_is_529_in_anthropics_error_shape():
    async def check(client: anthropic.AsyncAnthropic, state: EndpointState) -> None:
        with pytest.raises(anthropic.APIStatusError) as raised:
            await client.messages.create(model="claude-sim", max_tokens=64, messages=ASK)
        assert raised.value.status_code == 529
        assert raised.value.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "simulated 529"},
        }
        assert state.counts()["per_second"]["0"] == {"status_529": 1}

    with_endpoint(check, EndpointFault(status=529, error_rate=1.0))


def test_a_rate_limit_says_when_to_come_back():
    async def check(client: anthropic.AsyncAnthropic, state: EndpointState) -> None:
        with pytest.raises(anthropic.RateLimitError) as raised:
            await client.messages.create(model="claude-sim", max_tokens=64, messages=ASK)
        assert raised.value.response.headers["retry-after"] == "2"
        assert raised.value.body["error"]["type"] == "rate_limit_error"

    with_endpoint(check, EndpointFault(status=429, error_rate=1.0, retry_after=2))


def test_an_error_event_inside_a_200_stream_is_raised_by_the_sdk():
    async def check(client: anthropic.AsyncAnthropic, state: EndpointState) -> list[str]:
        texts: list[str] = []
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            async with client.messages.stream(model="claude-sim", max_tokens=64, messages=ASK) as stream:
                async for text in stream.text_stream:
                    texts.append(text)
        assert [a["outcome"] for a in state.answers] == ["inband_error"]
        return texts

    assert len(with_endpoint(check, EndpointFault(error_after_tokens=2))) == 2


def test_a_prefill_is_continued_with_the_rest_of_the_same_answer():
    async def check(client: anthropic.AsyncAnthropic, state: EndpointState) -> None:
        first = await client.messages.create(model="claude-sim", max_tokens=64, messages=ASK)
        whole = first.content[0].text
        start = " ".join(whole.split()[:3])
        prefill = [*ASK, {"role": "assistant", "content": start}]
        rest = await client.messages.create(model="claude-sim", max_tokens=64, messages=prefill)
        assert judge(f"{start} {rest.content[0].text}").integrity == WHOLE
        assert f"{start} {rest.content[0].text}" == whole
        assert state.answers[-1]["held"] == 2  # the marker and the first word travel together
        assert state.answers[-1]["complete"]  # what the prefill held counts as sent

    with_endpoint(check)


def test_a_tool_call_arrives_whole_as_tool_use_in_both_forms():
    async def check(client: anthropic.AsyncAnthropic, state: EndpointState) -> None:
        message = await client.messages.create(model="claude-sim", max_tokens=64, messages=ASK, tools=[TOOL])
        (block,) = message.content
        assert block.type == "tool_use" and block.name == "lookup" and message.stop_reason == "tool_use"
        assert judge(block.input["text"].strip()).integrity == WHOLE
        async with client.messages.stream(
            model="claude-sim", max_tokens=64, messages=ASK, tools=[TOOL]
        ) as stream:
            final = await stream.get_final_message()
        (streamed,) = final.content
        assert streamed.type == "tool_use"  # the SDK joined the input_json_delta fragments
        assert judge(streamed.input["text"].strip()).integrity == WHOLE

    with_endpoint(check)


def test_the_same_answers_as_the_openai_surface():
    """One endpoint, two formats: the answer an id names is the same words in both."""

    async def check(client: anthropic.AsyncAnthropic, state: EndpointState) -> None:
        message = await client.messages.create(model="claude-sim", max_tokens=64, messages=ASK)
        logged = state.answers[-1]
        assert message.content[0].text == Answer.new(logged["id"], logged["words"]).text()

    with_endpoint(check)
