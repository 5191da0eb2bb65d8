"""Endpoint faults and gateway policies end to end: simulated endpoints, real Toxiproxy and the
gateway process, all on 127.0.0.1. One stack serves the module; each gateway variant is started
once, on first use, and every test leaves no endpoint fault and no toxic behind."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from harness.endpoints.model import EndpointFault
from harness.gateway.launch import GROUP, gateway_config
from harness.load.integrity import judge
from harness.load.reading import read_completion, read_stream
from harness.run import GatewayProcess
from harness.stack import Stack, start_stack

TOKEN = os.environ.get("CHAOS_ADMIN_TOKEN") or "faults-admin-token"
"""The gateway takes CHAOS_ADMIN_TOKEN over its config, so a developer's own value wins here too."""
ANSWER = "Degraded: every model is resting, try again soon."
IDLE_TIMEOUT = 0.5
MODELS = ["model-0", "model-1", "model-2"]
LABELS = [f"{m}/{m}" for m in MODELS]
FAST_RETRY = {
    "attempts": 2,
    "on": ["server_error", "reset", "timeout", "refused", "rate_limited"],
    "base": 0.02,
    "cap": 0.1,
    "jitter": 0.01,
    "budget": None,
    "last_model_only": False,
}
"""Two attempts per model (not only on the last), no retry budget: endpoint counts per request
are exact."""
LENIENT_BREAKER = {"consecutive_failures": 1000, "minimum_calls": 1000}
"""Breakers that never open, so one test's failures cannot change the next test's routing."""
BASE_POLICIES = {
    "stream": {"stall_after": IDLE_TIMEOUT, "min_tokens_per_second": 0, "rescues": 0},
    "first_token_timeout": 2.0,
    "retry": FAST_RETRY,
    "breaker": LENIENT_BREAKER,
    "rate_limits": None,
    "slow_first_answer": None,
    "health": None,
}
"""Each piece on its own: these tests pin one policy's behaviour each (the defaults, all together,
are what the library and the conformance suite judge)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("faults")
    running = start_stack(len(MODELS), folder)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def gateways(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """`gateways(name)` -> the base URL of that gateway variant, started on first use."""
    folder = tmp_path_factory.mktemp("gateways")
    views: dict[str, GatewayProcess] = {}

    def config_of(name: str) -> dict[str, Any]:
        if name == "plain":
            config = gateway_config(stack, "resilient", dict(BASE_POLICIES))
        elif name == "degraded":
            config = gateway_config(stack, "resilient", {**BASE_POLICIES, "degraded_answer": ANSWER})
        elif name == "breaker":
            breaker = {"consecutive_failures": 2, "minimum_calls": 1000, "wait_duration": 60.0}
            config = gateway_config(stack, "resilient", {**BASE_POLICIES, "breaker": breaker})
        elif name == "hedged":
            config = gateway_config(stack, "resilient", dict(BASE_POLICIES), plan="hedged", hedge_delay=0.1)
        elif name == "weighted":
            config = gateway_config(stack, "resilient", dict(BASE_POLICIES), plan="weighted")
            for deployment, weight in zip(config["groups"][GROUP]["deployments"], WEIGHTS, strict=True):
                deployment["weight"] = weight
        elif name == "deadline":
            policies = {**BASE_POLICIES, "deadline": 1.0, "attempt_timeout": 5.0, "retry": {"attempts": 1}}
            config = gateway_config(stack, "resilient", policies)
        elif name == "strict-events":
            stream_policy = {**BASE_POLICIES["stream"], "malformed_events": "fail"}
            config = gateway_config(stack, "resilient", {**BASE_POLICIES, "stream": stream_policy})
        elif name == "passthrough":
            config = gateway_config(stack, "passthrough")
        else:
            raise AssertionError(name)
        config["admin_token"] = TOKEN
        return config

    def start(name: str) -> str:
        if name not in views:  # each its own process, sharing the stack's endpoints and proxies
            views[name] = GatewayProcess.start(config_of(name), folder, f"gateway-{name}")
        return views[name].url

    try:
        yield start
    finally:
        for view in views.values():
            view.stop()


@pytest.fixture(autouse=True)
def clean(stack: Stack) -> Iterator[None]:
    stack.reset_endpoint_counts()
    yield
    for model in stack.models:
        stack.clear_endpoint_fault(model)
    stack.toxics.reset()


def body(stream: bool = False) -> dict[str, Any]:
    return {"model": GROUP, "messages": [{"role": "user", "content": "hello there"}], "stream": stream}


def post(url: str, stream: bool = False, timeout: float = 10) -> requests.Response:
    return requests.post(f"{url}/v1/chat/completions", json=body(stream), timeout=timeout)


def outcomes(stack: Stack) -> dict[str, Counter[str]]:
    """What each endpoint received since the test began, by outcome. `client_gone` is left out:
    a stream an earlier test abandoned (the stall) is counted when its handler wakes up later."""
    totals: dict[str, Counter[str]] = {}
    for model, counts in stack.endpoint_counts().items():
        total: Counter[str] = Counter()
        for second in counts["per_second"].values():
            total.update(second)
        del total["client_gone"]
        totals[model] = total
    return totals


def assert_openai_error(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert "code" in error
    return dict(error)


@dataclass
class Streamed:
    """One streamed answer as the client saw it, with arrival times from the request's start."""

    status: int
    headers: dict[str, str]
    events: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    ended: float = 0.0

    @property
    def done(self) -> bool:
        return "[DONE]" in self.events

    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.events if e != "[DONE]"]

    def content(self) -> list[str]:
        return [
            c["choices"][0]["delta"].get("content") or ""
            for c in self.chunks()
            if c.get("choices") and (c["choices"][0]["delta"].get("content") or "")
        ]


def stream(url: str, timeout: float = 10) -> Streamed:
    started = time.monotonic()
    with requests.post(f"{url}/v1/chat/completions", json=body(True), stream=True, timeout=timeout) as r:
        seen = Streamed(r.status_code, dict(r.headers))
        for line in r.iter_lines():
            if line.startswith(b"data:"):
                seen.events.append(line[5:].strip().decode())
                seen.times.append(time.monotonic() - started)
        seen.ended = time.monotonic() - started
    return seen


# --- malformed JSON (non-stream) ---------------------------------------------------------------


def test_malformed_json_is_retried_then_failed_over_and_the_client_gets_a_valid_answer(stack, gateways):
    url = gateways("plain")
    stack.set_endpoint_fault("model-0", EndpointFault(malformed_json=True))
    for _ in range(3):
        response = post(url)
        assert response.status_code == 200, response.text
        assert response.headers["x-served-by"] == "model-1/model-1"
        assert response.headers["x-attempts"] == "3"  # model-0 twice (retry), then model-1
        answer = response.json()
        assert answer["choices"][0]["message"]["content"].strip()
        assert answer["model"] == "model-1"
    seen = outcomes(stack)
    assert seen["model-0"] == Counter(malformed_json=6)
    assert seen["model-1"] == Counter(ok=3)
    assert seen["model-2"] == Counter()


def test_malformed_json_everywhere_is_an_openai_error_never_the_broken_body(stack, gateways):
    url = gateways("plain")
    for model in MODELS:
        stack.set_endpoint_fault(model, EndpointFault(malformed_json=True))
    response = post(url)
    assert response.status_code == 502
    assert "chatcmpl-broken" not in response.text
    error = assert_openai_error(response)
    assert error["type"] == "upstream_error"
    assert response.headers["x-attempts"] == "6"
    assert {m: c["malformed_json"] for m, c in outcomes(stack).items()} == dict.fromkeys(MODELS, 2)


# --- broken streams: in-band error, no [DONE] -----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "gateway"),
    [
        (EndpointFault(malformed_sse=True), "strict-events"),
        (EndpointFault(cut_after_tokens=3), "plain"),
    ],
    ids=["malformed-sse-chunk-when-malformed-events-fail", "cut-mid-stream-without-rescue"],
)
def test_a_stream_broken_mid_answer_ends_with_an_in_band_error_and_no_done(stack, gateways, fault, gateway):
    url = gateways(gateway)
    stack.set_endpoint_fault("model-0", fault)
    seen = stream(url)
    assert seen.status == 200
    assert seen.headers["x-served-by"] == "model-0/model-0"
    assert not seen.done, "a truncated answer must never look complete"
    *relayed, last = seen.chunks()  # every event parses: the malformed chunk is never relayed
    assert last["error"]["code"] == "stream_interrupted"
    assert last["error"]["type"] == "stream_error"
    assert relayed and all("choices" in c for c in relayed)
    assert seen.content(), "the tokens before the break did reach the client"
    assert seen.ended < 3


@pytest.mark.parametrize(
    "fault",
    [EndpointFault(malformed_sse=True), EndpointFault(no_done=True)],
    ids=["malformed-event", "no-done"],
)
def test_a_stream_with_a_malformed_event_or_no_done_is_still_a_whole_answer_by_default(
    stack, gateways, fault
):
    url = gateways("plain")
    stack.set_endpoint_fault("model-0", fault)
    seen = stream(url)
    assert seen.status == 200 and seen.done
    assert judge("".join(seen.content())).integrity == "whole"  # the answer the endpoint sent, every word
    assert all("choices" in c for c in seen.chunks())  # the malformed event was skipped, not relayed


def test_a_stalled_stream_ends_with_an_in_band_error_within_the_idle_timeout(stack, gateways):
    url = gateways("plain")
    stack.set_endpoint_fault("model-0", EndpointFault(stall_after_tokens=2, stall_seconds=4.0))
    seen = stream(url)
    assert seen.status == 200 and not seen.done
    last = seen.chunks()[-1]
    assert last["error"]["code"] == "stream_interrupted"
    assert "stalled" in last["error"]["message"]
    assert len(seen.content()) == 2
    silence = seen.times[-1] - seen.times[-2]
    assert IDLE_TIMEOUT * 0.9 <= silence <= IDLE_TIMEOUT + 0.6, silence
    assert seen.ended < IDLE_TIMEOUT + 1.0, "the client is not kept waiting for the 4 s stall"


# --- slow first token and slow token rate ------------------------------------------------------


def test_slow_first_token_and_token_rate_show_in_client_timings(stack, gateways):
    url = gateways("plain")
    healthy = stream(url)
    assert healthy.done and healthy.times[0] < 0.3 and healthy.ended < 0.5

    extra, rate = 0.6, 25.0
    stack.set_endpoint_fault("model-0", EndpointFault(extra_first_token=extra, token_rate=rate))
    slow = stream(url)
    assert slow.done and slow.headers["x-served-by"] == "model-0/model-0"
    tokens = len(slow.content())
    assert tokens >= 8
    ttft = slow.times[0]
    assert extra <= ttft < extra + 0.5, ttft
    streaming = slow.ended - ttft
    assert streaming >= 0.9 * tokens / rate, (streaming, tokens)
    assert streaming < tokens / rate + 1.0

    started = time.monotonic()
    response = post(url)
    total = time.monotonic() - started
    assert response.status_code == 200
    words = response.json()["usage"]["completion_tokens"]
    assert total >= extra + 0.9 * words / rate, (total, words)


# --- degraded answer when every model is down ----------------------------------------------------


def test_every_model_down_gives_the_degraded_answer_marked_as_such(stack, gateways):
    url = gateways("degraded")
    for model in MODELS:
        stack.toxics.set_enabled(model, False)
    response = post(url)
    assert response.status_code == 200
    assert response.headers["x-degraded"] == "true"
    assert response.json()["choices"][0]["message"]["content"] == ANSWER

    seen = stream(url)
    assert seen.status == 200
    assert seen.headers["x-degraded"] == "true"
    assert seen.headers["Content-Type"].startswith("text/event-stream")
    assert seen.done
    assert "".join(seen.content()) == ANSWER
    assert outcomes(stack) == {m: Counter() for m in MODELS}, "no request reached an endpoint"


# --- admin state -----------------------------------------------------------------------------------


def admin_state(url: str, token: str) -> requests.Response:
    return requests.get(f"{url}/admin/state", headers={"Authorization": f"Bearer {token}"}, timeout=5)


def test_admin_state_shows_breaker_states_with_the_token_and_refuses_a_wrong_one(stack, gateways):
    url = gateways("breaker")
    stack.set_endpoint_fault("model-0", EndpointFault(error_rate=1.0, status=500))
    for _ in range(3):
        response = post(url)
        assert response.status_code == 200 and response.headers["x-served-by"] == "model-1/model-1"
    assert outcomes(stack)["model-0"] == Counter(status_500=2), "the open breaker stopped traffic"

    state = admin_state(url, TOKEN)
    assert state.status_code == 200
    circuits = {m["model"]: m["circuit"] for m in state.json()["groups"][GROUP]}
    assert circuits == {"model-0/model-0": "open", "model-1/model-1": "closed", "model-2/model-2": "closed"}

    refused = admin_state(url, TOKEN + "-wrong")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    assert "groups" not in refused.json()


# --- hedged and weighted plans -----------------------------------------------------------------


def test_hedged_plan_answers_from_the_fast_model_when_the_first_is_slow(stack, gateways):
    url = gateways("hedged")
    assert post(url).headers["x-served-by"] == "model-0/model-0"
    stack.toxics.add_toxic("model-0", "slow", "latency", {"latency": 1500, "jitter": 0})
    for _ in range(3):
        started = time.monotonic()
        response = post(url)
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert response.headers["x-served-by"] == "model-1/model-1"
        assert elapsed < 0.6, elapsed


WEIGHTS = [1.0, 3.0, 6.0]


def test_weighted_plan_spreads_traffic_by_weight(stack, gateways):
    url = gateways("weighted")
    requests_sent = 120
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: post(url), range(requests_sent)))
    assert all(r.status_code == 200 for r in responses)
    served = Counter(r.headers["x-served-by"] for r in responses)
    received = {m: c["ok"] for m, c in outcomes(stack).items()}
    assert received == {label.split("/")[0]: served[label] for label in LABELS}
    for model, weight in zip(MODELS, WEIGHTS, strict=True):
        expected = requests_sent * weight / sum(WEIGHTS)
        assert abs(received[model] - expected) <= 0.5 * expected + 5, (received, model)
    assert received["model-0"] < received["model-1"] < received["model-2"]


# --- non-retryable 400s ------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_content_filter_400_is_not_retried_nor_failed_over_and_reaches_the_client(stack, gateways, streaming):
    url = gateways("plain")
    stack.set_endpoint_fault("model-0", EndpointFault(error_rate=1.0, status=400, code="content_filter"))
    response = post(url, stream=streaming)
    assert response.status_code == 400
    error = assert_openai_error(response)
    assert error["code"] == "content_filter"
    assert error["type"] == "invalid_request_error"
    assert response.headers["x-attempts"] == "1"
    seen = outcomes(stack)
    assert seen["model-0"] == Counter(status_400=1)
    assert seen["model-1"] == Counter() and seen["model-2"] == Counter()


def test_context_length_400_is_not_retried_but_may_fail_over_to_a_larger_window(stack, gateways):
    url = gateways("plain")
    fault = EndpointFault(error_rate=1.0, status=400, code="context_length_exceeded")
    stack.set_endpoint_fault("model-0", fault)
    response = post(url)
    assert response.status_code == 200
    assert response.headers["x-served-by"] == "model-1/model-1"
    seen = outcomes(stack)
    assert seen["model-0"] == Counter(status_400=1), "one attempt: a retry cannot succeed"
    assert seen["model-1"] == Counter(ok=1)


CONTEXT_LENGTH_EVERYWHERE = (
    "bug: when every model answers 400 context_length_exceeded, the fallback (resilience_core/fallback.py "
    "_all_failed) wraps the 400s in AllModelsFailedError, which carries no status or code; "
    "harness/gateway.py error_response then answers 502 upstream_error, and Degrade "
    "(when=~NON_RETRYABLE) does not recognise it as a client error either"
)


def test_context_length_400_from_every_model_reaches_the_client_as_a_4xx(stack, gateways):
    url = gateways("plain")
    fault = EndpointFault(error_rate=1.0, status=400, code="context_length_exceeded")
    for model in MODELS:
        stack.set_endpoint_fault(model, fault)
    response = post(url)
    assert outcomes(stack) == {m: Counter(status_400=1) for m in MODELS}, "one attempt per model"
    error = assert_openai_error(response)
    assert response.status_code == 400, (response.status_code, error)
    assert error["code"] == "context_length_exceeded"


def test_context_length_400_from_every_model_is_not_masked_by_the_degraded_answer(stack, gateways):
    url = gateways("degraded")
    fault = EndpointFault(error_rate=1.0, status=400, code="context_length_exceeded")
    for model in MODELS:
        stack.set_endpoint_fault(model, fault)
    response = post(url)
    assert outcomes(stack) == {m: Counter(status_400=1) for m in MODELS}, "one attempt per model"
    assert response.headers.get("x-degraded") != "true", "a canned answer hides the caller's mistake"
    assert response.status_code == 400, response.text
    assert assert_openai_error(response)["code"] == "context_length_exceeded"


# --- fallback chains named in the request ----------------------------------------------------------


def chained(url: str, timeout: float = 10) -> requests.Response:
    request = {**body(), "model": "model-0", "fallbacks": ["model-1"]}
    return requests.post(f"{url}/v1/chat/completions", json=request, timeout=timeout)


def test_a_fallback_chain_shares_one_deadline_across_its_models(stack, gateways):
    url = gateways("deadline")
    for model in ("model-0", "model-1"):
        stack.toxics.add_toxic(model, "black-hole", "timeout", {"timeout": 0})
    started = time.monotonic()
    response = chained(url)
    took = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert took < 1.6, f"two models in a chain took {took:.2f}s under a 1 s deadline"


def test_the_passthrough_control_ignores_a_requested_fallback_chain(stack, gateways):
    stack.toxics.set_enabled("model-0", False)
    control = chained(gateways("passthrough"))
    assert control.status_code == 502
    assert outcomes(stack)["model-1"]["ok"] == 0
    resilient = chained(gateways("plain"))
    assert resilient.status_code == 200 and resilient.headers["x-served-by"] == "model-1/model-1"


# --- tool calls: whole or not at all -------------------------------------------------------------

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def call_tool(url: str, stream: bool) -> dict[str, Any]:
    """A request offering a tool, read the way the load generator reads it."""
    started = time.time()
    payload = {**body(stream), "tools": TOOLS}
    with requests.post(f"{url}/v1/chat/completions", json=payload, stream=stream, timeout=10) as r:
        read = read_stream(r.iter_lines(), started, False) if stream else read_completion(r.content, False)
        return {"status": r.status_code, "served_by": r.headers.get("x-served-by"), **read}


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "json"])
def test_a_tool_call_reaches_the_client_whole(stack, gateways, streaming):
    got = call_tool(gateways("plain"), streaming)
    assert got["status"] == 200 and got["finish_reason"] == "tool_calls"
    assert got["ok"] and got["integrity"] == "whole", got


def test_a_tool_call_cut_mid_arguments_is_failed_over_whole_never_spliced(stack, gateways):
    """A call's arguments are JSON: useless in part, and no model continues another's. The
    gateway holds a streamed call until it is whole, so a cut one is failed over from scratch;
    the passthrough control (one model, no failover) can only fail the request."""
    stack.set_endpoint_fault("model-0", EndpointFault(cut_after_tokens=3))
    for _ in range(3):
        got = call_tool(gateways("plain"), True)
        assert got["status"] == 200 and got["served_by"] == "model-1/model-1"
        assert got["ok"] and got["integrity"] == "whole" and got["finish_reason"] == "tool_calls", got
    seen = outcomes(stack)
    assert seen["model-0"] == Counter(stream_cut=6) and seen["model-1"] == Counter(ok=3)
    control = call_tool(gateways("passthrough"), True)
    assert control["status"] == 502 and not control["ok"], control
