"""The official openai client against our endpoints and gateway; cleanup after SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import openai
import pytest
import requests
import yaml

from harness.endpoints.model import EndpointFault
from harness.gateway.launch import gateway_config
from harness.load.integrity import WHOLE, judge
from harness.pytest_plugin import ChaosStack
from harness.run import GatewayProcess
from harness.scenario import load_scenario
from harness.stack import start_stack
from harness.stack.processes import Child, free_port, wait_until
from harness.stack.toxiproxy import Toxics

SMOKE = Path(__file__).resolve().parents[2] / "scenarios" / "smoke"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    running = start_stack(2, folder)
    gateway = GatewayProcess.start(gateway_config(running, "resilient"), folder)
    yield ChaosStack(running, gateway)
    gateway.stop()
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


def test_anthropic_client_through_the_proxy_meets_overload_and_a_dead_host(stack):
    """The Messages surface on the real stack: the endpoint process behind its Toxiproxy proxy,
    called with Anthropic's SDK; an endpoint fault (529) and a network one (host down) reach it."""
    client = anthropic.Anthropic(base_url=stack.proxy_urls["model-1"], api_key="x", max_retries=0, timeout=10)
    hello = [{"role": "user", "content": "hi"}]
    with client.messages.stream(model="model-1", max_tokens=64, messages=hello) as streamed:
        text = streamed.get_final_text()
    assert judge(text.strip()).integrity == WHOLE
    stack.set_endpoint_fault("model-1", EndpointFault(status=529, error_rate=1.0))
    try:
        with pytest.raises(anthropic.APIStatusError) as overloaded:
            client.messages.create(model="model-1", max_tokens=64, messages=hello)
        assert overloaded.value.status_code == 529
    finally:
        stack.clear_endpoint_fault("model-1")
    stack.toxics.set_enabled("model-1", False)
    try:
        with pytest.raises(anthropic.APIConnectionError):
            client.messages.create(model="model-1", max_tokens=64, messages=hello)
    finally:
        stack.toxics.set_enabled("model-1", True)
    assert client.messages.create(model="model-1", max_tokens=64, messages=hello).stop_reason == "end_turn"


def hears_ctrl_c() -> None:
    """Ctrl-C reaches the child as it would from a terminal: a shell that starts the tests in
    the background (`pytest &` in a script) makes them ignore SIGINT, and children inherit it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_gateway_errors_are_openai_style_and_admin_needs_the_token(stack):
    hello = [{"role": "user", "content": "hi"}]
    response = requests.post(
        f"{stack.gateway_url}/v1/chat/completions", json={"model": "nope", "messages": hello}, timeout=5
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    empty = requests.post(
        f"{stack.gateway_url}/v1/chat/completions", json={"model": "nope", "messages": []}, timeout=5
    )
    assert empty.status_code == 400  # a malformed body is refused before the model is looked up
    assert empty.json()["error"]["type"] == "invalid_request_error"
    # A browser's cross-origin "simple" POST (text/plain, no preflight) never reaches a model.
    plain = requests.post(
        f"{stack.gateway_url}/v1/chat/completions",
        data=json.dumps({"model": "chat", "messages": hello}),
        headers={"Content-Type": "text/plain", "Origin": "http://elsewhere.example"},
        timeout=5,
    )
    assert plain.status_code == 415 and plain.json()["error"]["param"] == "Content-Type"
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
            preexec_fn=hears_ctrl_c,
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
        preexec_fn=hears_ctrl_c,
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


def test_up_without_our_gateway_takes_a_scenarios_settings_and_stops_on_sigterm(tmp_path):
    """For a user's own gateway: only endpoints and proxies, OpenAI base URLs (with /v1) printed
    and written, the scenario's seed and latency applied, and SIGTERM stops it as Ctrl-C does."""
    folder = tmp_path / "up"
    scenario = SMOKE / "one-model-down.yaml"
    emitted = tmp_path / "litellm.yaml"
    command = [sys.executable, "-m", "harness", "up", "--no-gateway", "--scenario", str(scenario)]
    up = subprocess.Popen(
        [
            *command,
            "--seed",
            "7",
            "--first-token",
            "0.05",
            "--out",
            str(folder),
            "--emit",
            "litellm",
            str(emitted),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stack_file = folder / "stack.json"
        wait_until(stack_file.exists, timeout=30, what="stack.json written")
        described = json.loads(stack_file.read_text())
        assert described["seed"] == 7 and described["latency"]["first_token"] == 0.05
        assert len(described["models"]) == load_scenario(scenario).models.count
        for model in described["models"]:
            base = described["base_urls"][model]
            assert base == described["proxy_urls"][model] + "/v1"
            answer = requests.post(
                f"{base}/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert answer.status_code == 200
        assert not (folder / "gateway.ready.json").exists()
        wait_until(emitted.exists, timeout=10, what="the LiteLLM config written")
        litellm = yaml.safe_load(emitted.read_text())
        assert [d["litellm_params"]["api_base"] for d in litellm["model_list"]] == [
            described["base_urls"][m] for m in described["models"]
        ]
        assert {d["model_name"] for d in litellm["model_list"]} == {"chat"}
        assert [d["litellm_params"]["order"] for d in litellm["model_list"]] == [1, 2, 3]
    finally:
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=30)
    assert up.returncode == 0, err
    assert all(f"{described['base_urls'][m]}" in out for m in described["models"]), out
    assert "our gateway" not in out
    assert _processes_mentioning(str(folder)) == []


def test_wildcard_provider_and_first_token_timeout(stack, tmp_path):
    from harness.endpoints.model import EndpointFault

    config = {
        "mode": "resilient",
        "host": "127.0.0.1",
        "port": 0,
        "providers": [{"name": "any", "base_url": f"{stack.proxy_urls['model-0']}/v1", "models": ["*"]}],
        "policies": {"first_token_timeout": 0.3, "retry": None},
    }
    own = GatewayProcess.start(config, tmp_path, "wildcard-gateway")
    url = own.url
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
        own.stop()


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


def _long_run(tmp_path: Path, extra: list[str] | None = None) -> tuple[subprocess.Popen[str], Path]:
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
    command = [
        sys.executable,
        "-m",
        "harness",
        "run",
        str(scenario),
        "--out",
        str(out),
        "--no-control",
        *(extra or []),
    ]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = wait_until(lambda: next(out.glob("*/resilient/records.csv"), None), timeout=30)
    wait_until(lambda: records.read_text().count("\n") > 5, timeout=30, what="records written")
    return run, out


def test_toxiproxy_dying_mid_run_stops_it_unjudged_within_a_tick(tmp_path):
    run, out = _long_run(tmp_path)
    try:
        toxiproxy_url = json.loads(next(out.glob("*/stack/stack.json")).read_text())["toxiproxy_url"]
        port = toxiproxy_url.rsplit(":", 1)[1]
        (pid,) = [p for p in _processes_mentioning(f"-port {port}") if p != run.pid]
        os.kill(pid, signal.SIGKILL)
        _, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2, stderr
    assert "not judged: toxiproxy-server died at" in stderr and "Traceback" not in stderr
    folder = next(out.iterdir())
    assert (folder / "not_judged.json").exists() and not (folder / "results.json").exists()
    report = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(folder)], capture_output=True, text=True
    )
    assert report.returncode == 2 and "toxiproxy-server died" in report.stderr
    assert _processes_mentioning(str(out)) == []


def test_a_runner_killed_outright_leaves_no_process_behind(tmp_path):
    run, out = _long_run(tmp_path)
    toxiproxy_url = json.loads(next(out.glob("*/stack/stack.json")).read_text())["toxiproxy_url"]
    run.kill()  # SIGKILL: no finally block of the runner runs
    run.wait(timeout=10)
    wait_until(lambda: not _processes_mentioning(str(out)), timeout=10, what="children gone")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{toxiproxy_url}/version", timeout=2)


def test_an_attached_stack_is_cleaned_of_leftovers_before_the_run(stack, tmp_path):
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(stack.stack.describe()))
    stack.toxics.add_toxic("model-0", "left-behind", "latency", {"latency": 2000})  # a killed run's toxic
    scenario = tmp_path / "clean.yaml"
    scenario.write_text(
        "name: clean\nmodels: {count: 2}\nload: {rate: 10, users: 2}\n"
        "phases: {warmup: 0, baseline: 1, recovery: 0}\n"
    )
    out = tmp_path / "runs"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            str(scenario),
            "--stack",
            str(stack_file),
            "--target",
            stack.gateway_url,
            "--no-control",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(next(out.iterdir()).joinpath("results.json").read_text())
    assert results["variants"]["external"]["phases"]["baseline"]["p99_ms"] < 1000
    assert stack.toxics.active()["model-0"]["toxics"] == []


def test_an_external_target_named_by_pid_gets_its_cpu_measured(stack, tmp_path):
    """`--target-pid`: another team's gateway (here ours, started apart) gets CPU per 1,000
    requests as our own does; a PID without --target, or of no process, is refused with exit 2."""
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(stack.stack.describe()))
    scenario = tmp_path / "cpu.yaml"
    scenario.write_text(
        "name: cpu\nmodels: {count: 2}\nload: {rate: 20, users: 2}\n"
        "phases: {warmup: 0, baseline: 2, recovery: 0}\n"
    )
    out = tmp_path / "runs"
    base = [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), "--no-control"]
    attached = ["--stack", str(stack_file), "--target", stack.gateway_url]
    result = subprocess.run(
        [*base, *attached, "--target-pid", str(stack.gateway.pid)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(next(out.iterdir()).joinpath("results.json").read_text())
    cpu = results["variants"]["external"]["slis"]["cpu_s_per_1000"]
    assert cpu is not None and cpu > 0
    alone = subprocess.run([*base, "--target-pid", "1"], capture_output=True, text=True, timeout=60)
    assert alone.returncode == 2 and "--target" in alone.stderr and "Traceback" not in alone.stderr
    gone = subprocess.run(
        [*base, *attached, "--target-pid", "4194304"], capture_output=True, text=True, timeout=60
    )
    assert gone.returncode == 2 and "no such process" in gone.stderr
