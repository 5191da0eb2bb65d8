"""The pytest plugin: `pytest --chaos PATH` runs scenarios as tests; `chaos_stack` for own tests."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from harness.stack import GROUP

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
