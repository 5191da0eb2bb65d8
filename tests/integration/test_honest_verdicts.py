"""Verdicts from ground truth: a front that cuts answers and then claims a normal end fails the
gate; an honest one is never flagged for it; a fault the system under test never met is "not
exercised" and does not pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import PROJECT_ROOT, Stack, start_stack
from harness.stack.processes import Child, python_module, read_ready_file, wait_until

CUT_STREAMS = """
name: cut-streams
description: model-0 cuts its streams after three tokens for a while
seed: 5
models: {count: 2}
load: {rate: 30, users: 3, stream_share: 1.0}
phases: {warmup: 0.5, baseline: 1.5, recovery: 1.0}
faults:
  - {at: 0, for: 2.5, target: model-0, endpoint: {cut_after_tokens: 3}}
slo: {uptime: off, failure_impact: off, degraded_capacity: off, recovery_time_s: off}
"""


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    folder = tmp_path_factory.mktemp("fronted")
    running = start_stack(2, folder)
    stack_file = folder / "stack.json"
    stack_file.write_text(json.dumps(running.describe()), encoding="utf-8")
    try:
        yield running, stack_file
    finally:
        running.stop()


def front(stack: Stack, mode: str, folder: Path) -> Child:
    ready = folder / f"front-{mode}.json"
    argv = python_module(
        "tests.integration.front",
        "--upstream",
        f"{stack.proxy_urls['model-0']}/v1",
        "--mode",
        mode,
        "--ready-file",
        str(ready),
    )
    child = Child(f"front-{mode}", argv, folder / f"front-{mode}.log")
    wait_until(lambda: read_ready_file(ready), timeout=20, child=child, what="listening")
    return child


def results_of(out: Path) -> dict:
    (folder,) = out.iterdir()
    return json.loads((folder / "results.json").read_text())


@pytest.mark.parametrize("mode", ["dishonest", "honest"])
def test_a_front_that_papers_over_cut_streams_fails_the_gate_and_an_honest_one_is_not_flagged(
    stack, tmp_path, mode
):
    running, stack_file = stack
    scenario = tmp_path / "cut.yaml"
    scenario.write_text(CUT_STREAMS)
    child = front(running, mode, tmp_path)
    try:
        url = json.loads((tmp_path / f"front-{mode}.json").read_text())["url"]
        out = tmp_path / "runs"
        result = harness(
            "gate",
            str(scenario),
            "--stack",
            str(stack_file),
            "--target",
            url,
            "--no-control",
            "--out",
            str(out),
        )
    finally:
        child.stop()
    slis = results_of(out)["variants"]["external"]["slis"]
    if mode == "dishonest":
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert slis["truncated_successes"] > 10
        assert "truncated_successes: measured" in result.stderr
    else:
        assert slis["truncated_successes"] == 0 and slis["corrupted_successes"] == 0
        # The endpoints' own log of what they sent is in the run (the forged-id and waste checks).
        (run_folder,) = out.iterdir()
        assert (run_folder / "external" / "answers.jsonl").read_text().count("\n") > 10
        assert slis["wasted_tokens"]["all"]["sent"] > 0
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


NEVER_MET = """
name: never-met
description: model-1 answers 503 for 30 % of requests, but the sequential plan never calls it
models: {count: 2}
# Nothing of the gateway's own may reach model-1 either: no health probe, no cut for slowness
# (a scheduling hiccup on a busy machine would otherwise send it a request, and rightly count).
system_under_test: {policies: {health: null, slow_first_answer: null}}
load: {rate: 20, users: 2}
phases: {warmup: 0.5, baseline: 1.5, recovery: 1.0}
faults:
  - {at: 0, for: 2, target: model-1, endpoint: {error_rate: 0.3, status: 503}}
"""


def test_a_fault_the_system_under_test_never_met_is_not_exercised_and_does_not_pass(tmp_path):
    scenario = tmp_path / "never.yaml"
    scenario.write_text(NEVER_MET)
    out = tmp_path / "runs"
    result = harness("gate", str(scenario), "--no-control", "--out", str(out))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "not exercised" in result.stderr
    results = results_of(out)
    assert results["exercised"] == [
        {
            "fault": 0,
            "kind": "endpoint",
            "models": ["model-1"],
            "exercised": False,
            "basis": "no traffic reached it during the fault: the system under test never met this fault",
        }
    ]
    row = results["variants"]["resilient"]["faults"][0]
    assert row["recovery_time_s"] is None and row["recovery_basis"] == "n/a: not exercised"
    assert "NOT exercised" in (out / next(out.iterdir()).name / "summary.md").read_text()


def test_a_target_command_gets_a_stack_of_its_own_is_judged_measured_and_stopped(tmp_path):
    """`--target-cmd`: the harness starts someone else's gateway (the dishonest front) on the
    scenario's own stack, judges it from ground truth, measures its CPU, and stops it."""
    scenario = tmp_path / "cut.yaml"
    scenario.write_text(CUT_STREAMS)
    out = tmp_path / "runs"
    told = tmp_path / "front.json"
    command = (
        f"{sys.executable} -m tests.integration.front --stack {{stack}} --port {{port}} "
        f"--mode dishonest --ready-file {told}"
    )
    result = harness("run", str(scenario), "--target-cmd", command, "--no-control", "--out", str(out))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    slis = results_of(out)["variants"]["external"]["slis"]
    assert slis["truncated_successes"] > 10
    assert slis["cpu_s_per_1000"] is not None and slis["cpu_s_per_1000"] > 0
    front = json.loads(told.read_text())
    assert not Path(f"/proc/{front['pid']}").exists(), "the front outlived its run"
    (run_folder,) = out.iterdir()
    stack_file = json.loads((run_folder / "target" / "stack.json").read_text())
    assert front["url"].startswith("http://127.0.0.1:") and stack_file["seed"] == 5


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--target-cmd", "front --port 1 {nope}"], "unknown placeholder {nope}"),
        (["--target-cmd", "front --port 8000"], "put {port} where"),
        (["--target-cmd", "front {port}", "--stack", "stack.json"], "drop --stack"),
        (["--target-cmd", "front {port}", "--sim"], "--target-cmd cannot be simulated"),
    ],
)
def test_a_target_command_that_cannot_run_is_refused_with_exit_2(tmp_path, extra, says):
    scenario = tmp_path / "cut.yaml"
    scenario.write_text(CUT_STREAMS)
    (tmp_path / "stack.json").write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(scenario), *extra, "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert says in result.stderr
    assert not (tmp_path / "runs").exists()
