"""The pytest plugin: `pytest --chaos PATH` runs scenarios as tests; `chaos_stack` for own tests."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from harness.gateway.launch import GROUP

TINY = """
name: {name}
models: {{count: 2}}
load: {{rate: 10, users: 2}}
phases: {{warmup: 0.5, baseline: 2, recovery: 0.5}}
slo: {slo}
"""


def test_each_scenario_is_a_test_and_a_breach_lists_measured_vs_target(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "calm.yaml").write_text(TINY.format(name="calm", slo="{}"))
    (suite / "impossible.yaml").write_text(TINY.format(name="impossible", slo='{p50_ms: "< 1"}'))
    command = [sys.executable, "-m", "pytest", "--chaos", str(suite), "--chaos-out", str(tmp_path / "runs")]
    result = subprocess.run(
        [*command, "-q", "-p", "no:cacheprovider"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 failed, 1 passed" in result.stdout
    assert "impossible: SLOs breached" in result.stdout
    assert "p50_ms: measured" in result.stdout and "target < 1" in result.stdout
    assert "report: " in result.stdout


@pytest.mark.chaos(models=2)
def test_the_chaos_stack_fixture_serves_through_a_fault(chaos_stack):
    url = f"{chaos_stack.gateway_url}/v1/chat/completions"
    body = {"model": GROUP, "messages": [{"role": "user", "content": "hi"}]}
    assert requests.post(url, json=body, timeout=10).status_code == 200
    chaos_stack.toxics.set_enabled("model-0", False)
    answers = [requests.post(url, json=body, timeout=10) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.headers["x-served-by"] for a in answers} == {"model-1/model-1"}


USER_PROJECT = '''
"""A user's own tests, in their own project: only the installed plugin is imported."""

import time

import httpx2 as httpx
import pytest
import requests

BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def test_down_then_back(chaos_stack_shared):
    url = f"{chaos_stack_shared.gateway_url}/v1/chat/completions"
    with chaos_stack_shared.fault("model-0", down=True):
        served = {requests.post(url, json=BODY, timeout=10).headers["x-served-by"] for _ in range(4)}
    assert served and "model-0/model-0" not in served
    assert chaos_stack_shared.toxics.active()["model-0"]["enabled"] is True  # cleared after the block


def test_the_session_stack_is_shared_and_clean(chaos_stack_shared):
    assert all(p["enabled"] and not p["toxics"] for p in chaos_stack_shared.toxics.active().values())


@pytest.mark.anyio
async def test_an_async_client_through_a_latency_fault(chaos_stack_shared):
    url = f"{chaos_stack_shared.gateway_url}/v1/chat/completions"
    with chaos_stack_shared.fault("model-0", latency_ms=300):
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(url, json=BODY)
    assert answer.status_code == 200
    assert chaos_stack_shared.toxics.active()["model-0"]["toxics"] == []


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.chaos(models=2, plan="hedged", hedge_delay=0.05)
def test_a_hedged_plan_from_the_marker(chaos_stack):
    url = f"{chaos_stack.gateway_url}/v1/chat/completions"
    with chaos_stack.fault("model-0", latency_ms=1000):
        started = time.monotonic()
        answer = requests.post(url, json=BODY, timeout=10)
        elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.headers["x-served-by"] == "model-1/model-1"
    assert elapsed < 0.9  # the hedge after 50 ms answered, not the slow primary


def test_an_endpoint_fault_is_cleared_even_when_the_test_fails(chaos_stack_shared):
    with pytest.raises(RuntimeError):
        with chaos_stack_shared.fault("model-1", error_rate=1.0, status=503):
            raise RuntimeError("the user's assertion failed")
    url = chaos_stack_shared.endpoint_urls["model-1"]
    assert requests.post(f"{url}/v1/chat/completions", json={**BODY, "model": "model-1"}, timeout=10).ok
'''


def test_a_users_own_project_gets_the_fixtures_from_the_installed_plugin(tmp_path):
    """As a user would: a separate folder, no conftest, no import of ours; pytest finds the plugin
    through its entry point. Shared session stack, fault helpers, an async test, marker plans."""
    project = tmp_path / "their-project"
    project.mkdir()
    (project / "test_theirs.py").write_text(USER_PROJECT)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(project),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=project,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout
