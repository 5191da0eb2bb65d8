"""`chaos-harness run --sim`: the same run folder as a real run, judged by the same reports,
the same bytes every time, and refused where it cannot stand in for a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCENARIO = """
name: sim-check
description: three faults, one model after another
models: {count: 3}
load: {rate: 40, users: 4, stream_share: 0.5}
phases: {warmup: 1, baseline: 4, recovery: 12}
faults:
  # 5 s: streams cut as model-0 dies hold it for 3 s, and the outage must outlast that hold to
  # open its breaker (the audit trail compared below must not be empty)
  - {at: 0, for: 5, target: model-0, down: true}
  - {at: 5, for: 3, target: model-1, endpoint: {cut_after_tokens: 2}}
  - {at: 8, for: 3, target: model-2, network: {type: latency, attributes: {latency: 400}}}
"""
FILES = (
    "records.csv",
    "endpoint_counts.json",
    "answers.jsonl",
    "audit.jsonl",
    "timeline.jsonl",
    "proxies.jsonl",
)


def harness(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_the_same_scenario_and_seed_give_the_same_run_byte_for_byte(tmp_path: Path):
    scenario = tmp_path / "sim-check.yaml"
    scenario.write_text(SCENARIO)
    runs = {}
    for hash_seed in ("1", "2"):  # a different hash seed too: no set or dict order leaks in
        out = tmp_path / f"runs-{hash_seed}"
        command = [sys.executable, "-m", "harness", "run", str(scenario), "--sim", "--out", str(out)]
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        log = tmp_path / f"stderr-{hash_seed}.txt"
        # Side by side: a simulated run reads no wall clock, so sharing the cores changes nothing.
        with log.open("w") as stderr:
            runs[out] = (subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env), log)
    folders = []
    try:
        for out, (process, log) in runs.items():
            assert process.wait(timeout=300) in (0, 1), log.read_text()[-3000:]
            (folder,) = out.iterdir()
            folders.append(folder)
    finally:  # a failed first run leaves no second one behind
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for variant in ("resilient", "control"):
        for name in FILES:
            first = (folders[0] / variant / name).read_bytes()
            assert first or (name == "audit.jsonl" and variant == "control"), f"{variant}/{name} is empty"
            assert first == (folders[1] / variant / name).read_bytes(), f"{variant}/{name} differs"


def test_a_simulated_run_is_judged_by_the_reports_and_says_what_it_cannot_measure(tmp_path: Path):
    scenario = tmp_path / "sim-check.yaml"
    scenario.write_text(SCENARIO)
    done = harness("run", str(scenario), "--sim", "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (folder,) = (tmp_path / "runs").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["simulated"] is True and results["passed"] is True
    assert results["bite"]["bit"] is True  # the control, simulated too, is hurt by the faults
    assert all(fault["exercised"] for fault in results["exercised"])
    overhead = next(
        v for v in results["variants"]["resilient"]["verdicts"] if v["sli"] == "resource_overhead"
    )
    assert overhead["status"] == "skipped" and "not simulated" in overhead["reason"]
    summary = (folder / "summary.md").read_text()
    assert "Simulated run" in summary
    assert "health:" not in done.stderr  # the gateway's log lines went to its gateway.log
    assert (folder / "resilient" / "gateway.log").exists()


def test_what_cannot_be_simulated_is_refused_with_exit_2(tmp_path: Path):
    scenario = tmp_path / "sim-check.yaml"
    scenario.write_text(SCENARIO)
    done = harness("run", str(scenario), "--sim", "--target", "http://127.0.0.1:9", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "--sim" in done.stderr and "--target" in done.stderr
