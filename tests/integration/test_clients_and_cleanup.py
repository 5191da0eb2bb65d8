"""The official openai client against our endpoints and gateway; cleanup after SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import requests

from harness.processes import Child, free_port, wait_until
from harness.stack import gateway_config, start_stack
from harness.toxiproxy import Toxics


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    running = start_stack(2, folder)
    running.start_gateway(gateway_config(running, "resilient"), folder)
    yield running
    running.stop()


@pytest.mark.parametrize("target", ["endpoint", "gateway"])
def test_openai_client_works_streaming_and_not(stack, target):
    base = stack.endpoint_urls["model-0"] if target == "endpoint" else stack.gateway_url
    model = "model-0" if target == "endpoint" else "chat"
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0, timeout=10)
    answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content.strip()
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        if chunk.choices
    ]
    assert "".join(pieces).strip()
    assert [m.id for m in client.models.list().data]


def test_gateway_errors_are_openai_style_and_admin_needs_the_token(stack):
    response = requests.post(
        f"{stack.gateway_url}/v1/chat/completions", json={"model": "nope", "messages": []}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert requests.get(f"{stack.gateway_url}/admin/state", timeout=5).status_code == 401
    metrics = requests.get(f"{stack.gateway_url}/metrics", timeout=5).text
    assert "model_calls_total" in metrics


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def test_sigint_during_a_fault_leaves_no_toxic_and_no_process(tmp_path, toxiproxy_binary):
    port = free_port()
    server = Child(
        "toxiproxy",
        [str(toxiproxy_binary), "-host", "127.0.0.1", "-port", str(port)],
        tmp_path / "shared-toxiproxy.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{url}/version", timeout=1).ok, timeout=10, child=server)
        scenario = tmp_path / "long-fault.yaml"
        scenario.write_text(
            json.dumps(
                {
                    "name": "long-fault",
                    "models": {"count": 2},
                    "load": {"rate": 10, "users": 2},
                    "phases": {"warmup": 0.5, "baseline": 0.5, "recovery": 1},
                    "faults": [
                        {
                            "at": 0,
                            "for": 60,
                            "target": "model-0",
                            "network": {"type": "latency", "attributes": {"latency": 100}},
                        },
                        {"at": 0, "for": 60, "target": "model-1", "down": True},
                    ],
                }
            )
        )
        out = tmp_path / "runs"
        run = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), "--no-control"],
            env={**os.environ, "TOXIPROXY_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        toxics = Toxics(url)

        def fault_is_on():
            if run.poll() is not None:
                pytest.fail(f"the run ended early: {run.communicate()[1][-2000:]}")
            proxies = toxics.active()
            return proxies.get("model-0", {}).get("toxics") and not proxies["model-1"]["enabled"]

        wait_until(fault_is_on, timeout=30, what="fault applied")
        time.sleep(0.5)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=30)
        assert run.returncode == 130, stderr
        assert "interrupted" in stderr
        assert toxics.active() == {}, "every toxic and proxy of the run is gone from the shared server"
        assert _processes_mentioning(str(out)) == [], "no child of the run is alive"
        records = next(out.glob("*/resilient/records.csv"))
        assert len(records.read_text().splitlines()) > 1, "records written before the interrupt stay"
    finally:
        server.stop()


def test_up_then_run_against_an_external_gateway_attached_to_that_stack(tmp_path):
    """The README's route for users' own gateways: `up`, then `run --stack --target`."""
    from harness.run import Runner
    from harness.scenario import parse_scenario
    from tests.integration.conftest import read_records

    folder = tmp_path / "up"
    up = subprocess.Popen(
        [sys.executable, "-m", "harness", "up", "--models", "2", "--out", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stack_file = folder / "stack.json"
        wait_until(stack_file.exists, timeout=30, what="stack.json written")
        described = json.loads(stack_file.read_text())
        gateway = json.loads((folder / "gateway.ready.json").read_text())["url"]  # "their" gateway
        scenario = parse_scenario(
            {
                "name": "external",
                "models": {"count": 2},
                "load": {"rate": 20, "users": 2},
                "phases": {"warmup": 0.5, "baseline": 1, "recovery": 1},
                "faults": [{"at": 0, "for": 2, "target": "model-0", "down": True}],
            }
        )
        result = Runner(tmp_path / "runs", progress=lambda line: None).run(
            scenario, target=gateway, control=False, attach=stack_file
        )
        variant = result.variants[0]
        assert variant.name == "external" and variant.records == variant.locust_total > 0
        assert {r["served_by"] for r in read_records(variant.folder)} >= {"model-1/model-1"}
        toxics = Toxics(described["toxiproxy_url"])
        assert toxics.active() == {m: {"enabled": True, "toxics": []} for m in described["models"]}, (
            "the attached stack is left as it was found, still running"
        )
        assert up.poll() is None
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=30)
    assert up.returncode == 0
    assert _processes_mentioning(str(folder)) == []


def test_wildcard_provider_and_first_token_timeout(stack, tmp_path):
    from harness.faults import EndpointFault

    config = {
        "mode": "resilient",
        "host": "127.0.0.1",
        "port": 0,
        "providers": [{"name": "any", "base_url": f"{stack.proxy_urls['model-0']}/v1", "models": ["*"]}],
        "policies": {"first_token_timeout": 0.3, "retry": None},
    }
    own = stack.view()
    url = own.start_gateway(config, tmp_path, "wildcard-gateway")
    try:
        body = {"model": "any-model-name", "messages": [{"role": "user", "content": "hi"}]}
        answer = requests.post(f"{url}/v1/chat/completions", json=body, timeout=10)
        assert answer.status_code == 200 and answer.headers["x-served-by"] == "any/any-model-name"
        stack.set_endpoint_fault("model-0", EndpointFault(extra_first_token=3.0))
        started = time.monotonic()
        slow = requests.post(f"{url}/v1/chat/completions", json={**body, "stream": True}, timeout=10)
        assert slow.status_code == 504 and time.monotonic() - started < 1.5
    finally:
        stack.clear_endpoint_fault("model-0")
        own.stop_gateway()


def test_a_child_dying_mid_run_exits_2_and_cleans_up(tmp_path):
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        json.dumps(
            {
                "name": "long",
                "models": {"count": 2},
                "load": {"rate": 10, "users": 2},
                "phases": {"warmup": 0.5, "baseline": 30, "recovery": 0},
            }
        )
    )
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), "--no-control"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = wait_until(lambda: next(out.glob("*/resilient/gateway.ready.json"), None), timeout=30)
        records = wait_until(lambda: next(out.glob("*/resilient/records.csv"), None), timeout=30)
        wait_until(lambda: records.read_text().count("\n") > 5, timeout=30, what="records written")
        gateway_pid = json.loads(ready.read_text())["pid"]
        os.kill(gateway_pid, signal.SIGKILL)  # the run started it; we play the crash
        _, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2, stderr
    assert "gateway died" in stderr and "Traceback" not in stderr
    assert _processes_mentioning(str(out)) == []
    toxiproxy_url = json.loads(next(out.glob("*/stack/stack.json")).read_text())["toxiproxy_url"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{toxiproxy_url}/version", timeout=2)  # the run's own Toxiproxy is stopped too
    assert next(out.glob("*/resilient/records.csv")).read_text().count("\n") > 1
