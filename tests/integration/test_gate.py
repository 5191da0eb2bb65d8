"""The CI gate on real runs: the smoke suite's faults pass and bite; the control itself is failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.stack import PROJECT_ROOT

SMOKE = PROJECT_ROOT / "scenarios" / "smoke"


def gate(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "gate", *args], capture_output=True, text=True, timeout=timeout
    )


def smoke_faults(folder: Path) -> Path:
    """The smoke suite without healthy-baseline, as a folder of its own. healthy-baseline has no
    fault and one job: the p99 overhead, which needs 80 s of load a side at the demo's scale (a
    speed figure: `make demo` and `make bench`'s suite judge it); the five fault scenarios take
    about as long together."""
    folder.mkdir()
    for scenario in SMOKE.glob("*.yaml"):
        if scenario.stem != "healthy-baseline":
            shutil.copy(scenario, folder / scenario.name)
    return folder


def test_the_smoke_faults_pass_on_the_resilient_gateway_and_every_fault_bites_the_control(tmp_path):
    out, junit, summary = tmp_path / "runs", tmp_path / "junit.xml", tmp_path / "summary.md"
    suite = smoke_faults(tmp_path / "smoke")
    args = [
        str(suite),
        "--time-scale",
        "0.5",
        "--out",
        str(out),
        "--junit",
        str(junit),
        "--summary",
        str(summary),
    ]
    result = gate(*args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    folders = sorted(out.iterdir())
    assert len(folders) == len(list(SMOKE.glob("*.yaml"))) - 1 == 5
    for folder in folders:
        results = json.loads((folder / "results.json").read_text())
        resilient = results["variants"]["resilient"]
        assert resilient["passed"], (folder.name, [v for v in resilient["verdicts"] if v["status"] == "fail"])
        assert resilient["slis"]["truncated_successes"] == 0
        assert results["windows"] and results["bite"]["bit"] is True, (folder.name, results["bite"])
        for name in ("report.html", "summary.md", "junit.xml"):
            assert (folder / name).stat().st_size > 0
        assert f"report: {folder / 'report.html'}" in result.stdout
    cases = ET.parse(junit).getroot()
    assert cases.get("failures") == "0" and int(cases.get("tests")) >= 5 * 8
    assert f"{len(folders)}/{len(folders)} scenarios passed" in summary.read_text()
    # The job summary links each report relative to itself: it works where it is uploaded.
    for folder in folders:
        assert f"(runs/{folder.name}/report.html)" in summary.read_text()
    assert str(tmp_path) not in summary.read_text()


def test_pointing_the_gate_at_the_passthrough_control_fails_it_with_the_breached_slos(tmp_path):
    junit = tmp_path / "junit.xml"
    scenario = SMOKE / "one-model-down.yaml"
    args = [
        str(scenario),
        "--mode",
        "passthrough",
        "--no-control",
        "--time-scale",
        "0.4",
        "--out",
        str(tmp_path),
    ]
    result = gate(*args, "--junit", str(junit))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "one-model-down: uptime: measured" in result.stderr
    failed = {c.get("name"): c.find("failure") for c in ET.parse(junit).getroot().iter("testcase")}
    assert failed["uptime"] is not None and "target >= 99.9%" in failed["uptime"].get("message")
    assert failed["failure_impact"] is not None


def test_the_gate_exits_2_with_one_line_on_a_bad_scenario(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nslo: {uptime: sometimes}\n")
    result = gate(str(bad), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "slo: uptime" in result.stderr
