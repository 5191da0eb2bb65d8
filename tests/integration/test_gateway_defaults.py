"""Our gateway with its default policies on a real stack: health checks find an idle model's
death before a request does, every model rate limited means a 429 with Retry-After, per-request
fallbacks are bounded, wildcard groups are evicted least recently used, and a provider's error
code never reaches the client unchecked."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.endpoints.model import EndpointFault
from harness.gateway.launch import GROUP, gateway_config
from harness.load.reading import read_stream
from harness.pytest_plugin import ChaosStack
from harness.run import GatewayProcess
from harness.stack import start_stack
from harness.stack.processes import wait_until

TOKEN = "defaults-token"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    folder = tmp_path_factory.mktemp("defaults")
    running = start_stack(3, folder)
    config = gateway_config(running, "resilient", {"health": {"interval": 1.0, "unhealthy_interval": 0.5}})
    config |= {"admin_token": TOKEN, "audit_path": str(folder / "audit.jsonl"), "max_groups": 6}
    config["providers"].append(
        {"name": "any", "base_url": f"{running.proxy_urls['model-1']}/v1", "models": ["wild-*"]}
    )
    gateway = GatewayProcess.start(config, folder)
    try:
        yield ChaosStack(running, gateway)
    finally:
        gateway.stop()
        running.stop()


@pytest.fixture(autouse=True)
def clean(stack: ChaosStack) -> Iterator[None]:
    yield
    for model in stack.models:
        stack.clear_endpoint_fault(model)
    stack.toxics.reset()


def chat(stack: ChaosStack, **extra: Any) -> requests.Response:
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}], **extra}
    return requests.post(f"{stack.gateway_url}/v1/chat/completions", json=body, timeout=15)


def health(stack: ChaosStack, label: str, group: str = GROUP) -> str:
    state = requests.get(
        f"{stack.gateway_url}/admin/state", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    return next(m["health"] for m in state.json()["groups"][group] if m["model"] == label)


def test_health_checks_find_an_idle_models_death_and_its_return(stack):
    assert chat(stack).headers["x-served-by"] == "model-0/model-0"  # model-2 is idle: nobody calls it
    stack.toxics.set_enabled("model-2", False)
    wait_until(lambda: health(stack, "model-2/model-2") == "unhealthy", timeout=10, what="found unhealthy")
    audit = [json.loads(line) for line in Path(stack.gateway.folder / "audit.jsonl").read_text().splitlines()]
    assert any(
        e["kind"] == "HealthChanged" and e["model"] == "model-2/model-2" and e["to"] == "unhealthy"
        for e in audit
    )
    metrics = requests.get(f"{stack.gateway_url}/metrics", timeout=5).text
    assert 'gateway_model_health{group="chat",model="model-2/model-2",status="unhealthy"} 1.0' in metrics
    # model-2's own (implicit) group routes to the same deployment: told, not probing it again
    assert health(stack, "model-2/model-2", group="model-2") == "unhealthy"
    stack.toxics.set_enabled("model-2", True)
    wait_until(lambda: health(stack, "model-2/model-2") == "healthy", timeout=10, what="back to healthy")


def test_when_every_model_is_rate_limited_the_client_gets_429_with_retry_after(stack):
    for model in stack.models:
        stack.set_endpoint_fault(model, EndpointFault(error_rate=1.0, status=429, retry_after=30.0))
    started = time.monotonic()
    response = chat(stack)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 29
    assert time.monotonic() - started < 2  # no wait that cannot fit the deadline
    assert response.json()["error"]["type"] == "rate_limit_error"
    again = chat(stack)  # every model is still held: told when to come back, nobody asked
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 28
    assert again.headers["x-attempts"] == "0"
    for model in stack.models:
        stack.clear_endpoint_fault(model)
        restored = requests.post(  # an operator's restore lifts the hold at once
            f"{stack.gateway_url}/admin/models/{model}/restore",
            json={"reason": "the provider raised our quota"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert restored.status_code == 200, restored.text
    assert chat(stack).status_code == 200


def test_per_request_fallbacks_are_bounded_and_named_sanely(stack):
    too_many = chat(stack, fallbacks=[f"wild-{i}" for i in range(1500)])
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "fallbacks"
    odd = chat(stack, fallbacks=["x" * 5000])
    assert odd.status_code == 404 and len(odd.content) < 500


def test_wildcard_groups_beyond_the_limit_evict_the_least_recently_used(stack):
    for i in range(8):  # more than max_groups allows
        response = chat(stack, model=f"wild-{i}")
        assert response.status_code == 200, response.text
    models = requests.get(f"{stack.gateway_url}/v1/models", timeout=5).json()["data"]
    names = {m["id"] for m in models}
    assert len(names) <= 6 and "wild-7" in names and "wild-0" not in names
    assert chat(stack, model="wild-0").status_code == 200  # a new name is never locked out


def test_a_providers_error_code_is_mapped_to_a_known_one_and_bounded(stack):
    for model in stack.models:
        stack.set_endpoint_fault(
            model, EndpointFault(error_rate=1.0, status=400, code="sk-secret/" + "x" * 100_000)
        )
    response = chat(stack)
    assert response.status_code == 400
    assert len(response.content) < 500 and "sk-secret" not in response.text
    assert response.json()["error"]["code"] is None


def test_a_stream_cut_after_its_last_word_is_finished_not_failed(stack):
    """Found by the simulator: a connection lost between the last word and the end used to be
    continued with nothing left to add, which the gateway took for a failure."""
    stack.set_endpoint_fault("model-0", EndpointFault(cut_before_finish=True))
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with requests.post(f"{stack.gateway_url}/v1/chat/completions", json=body, stream=True, timeout=15) as r:
        assert r.status_code == 200
        verdict = read_stream(r.iter_lines(), time.time(), False)
    assert verdict["ok"] and verdict["integrity"] == "whole" and verdict["done"], verdict


def test_with_two_of_three_models_cutting_streams_the_third_finishes_the_answer(stack):
    """Found by `explore`: the model that cut an answer continued it, was cut again, then the
    second faulty model took the last continuation and the healthy third was never asked. Now a
    model that cut an answer may continue it once, and every later failure holds the model."""
    for model in ("model-0", "model-1"):
        stack.set_endpoint_fault(model, EndpointFault(cut_after_tokens=1))
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    url = f"{stack.gateway_url}/v1/chat/completions"
    for _ in range(3):
        with requests.post(url, json=body, stream=True, timeout=15) as r:
            assert r.status_code == 200
            verdict = read_stream(r.iter_lines(), time.time(), False)
        assert verdict["ok"] and verdict["integrity"] == "whole" and verdict["done"], verdict


def test_a_first_cut_is_continued_on_another_free_model_of_the_group(stack):
    """A model that cuts every answer cuts its continuation too: with another model of the
    group free, the first cut answer is continued there, not on the model that cut it (in
    stream-cut each first cut answer took two continuations, ~250 ms, and the fault window's
    p95 read +65 %). The client still gets one whole answer."""
    served = lambda: chat(stack).headers.get("x-served-by") == "model-0/model-0"  # noqa: E731
    wait_until(served, timeout=10, what="model-0 first again")  # an earlier test's holds ended
    stack.set_endpoint_fault("model-0", EndpointFault(cut_after_tokens=3))
    stack.stack.reset_endpoint_counts()
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with requests.post(f"{stack.gateway_url}/v1/chat/completions", json=body, stream=True, timeout=15) as r:
        assert r.status_code == 200 and r.headers["x-served-by"] == "model-0/model-0"
        verdict = read_stream(r.iter_lines(), time.time(), False)
    assert verdict["ok"] and verdict["integrity"] == "whole" and verdict["done"], verdict
    answers = stack.stack.endpoint_answers()
    assert [a["model"] for a in answers if a.get("held")] == ["model-1"], answers


def test_an_in_band_error_after_a_200_is_rescued_into_a_whole_answer(stack):
    """OpenAI reports a stream failing after its 200 as an error event; the gateway continues
    the answer elsewhere instead of relaying the error, and the client sees one whole answer."""
    stack.set_endpoint_fault("model-0", EndpointFault(error_after_tokens=2))
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    url = f"{stack.gateway_url}/v1/chat/completions"
    with requests.post(url, json=body, stream=True, timeout=15) as r:
        assert r.status_code == 200
        verdict = read_stream(r.iter_lines(), time.time(), False)
    assert verdict["ok"] and verdict["integrity"] == "whole" and verdict["done"], verdict
    assert not verdict["inband_error"]
    direct = f"{stack.endpoint_urls['model-0']}/v1/chat/completions"
    with requests.post(direct, json={**body, "model": "model-0"}, stream=True, timeout=15) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1].startswith(b'data: {"error"') and b"[DONE]" not in lines[-1]


def test_a_client_trickling_its_headers_is_disconnected_and_others_are_still_served(tmp_path: Path):
    """Slowloris: a connection whose request headers never end is closed at `client_timeout`,
    while a whole request on another connection is answered."""
    config = {
        "providers": [{"name": "p", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
        "client_timeout": 1.0,
    }
    gateway = GatewayProcess.start(config, tmp_path)
    try:
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as slow:
            slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            for _ in range(3):  # a header line now and then, never the blank line that ends them
                assert requests.get(f"{gateway.url}/v1/models", timeout=5).status_code == 200
                try:
                    slow.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break
                time.sleep(0.3)
            assert slow.recv(1024) == b""  # closed by the gateway, not by us
            assert time.monotonic() - started < 5
    finally:
        gateway.stop()


def test_a_deployment_in_two_groups_is_probed_once_per_interval(stack):
    """Every provider model also has its own implicit group; probing per group doubled the
    probes, and the endpoints count each as an upstream call (retry amplification)."""
    endpoint = stack.stack.endpoint("model-2")  # idle: only health probes reach it
    endpoint.reset_counts()
    time.sleep(3.0)  # three intervals of 1 s (jitter 10 %)
    probes = sum(sum(kinds.values()) for kinds in endpoint.counts()["per_second"].values())
    assert 2 <= probes <= 4, probes
