"""`chaos-harness scorecard`: run folders (here simulated, for speed) become one table of systems
x scenarios, with verdicts, breached SLOs and key figures, in Markdown, HTML and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300
    )


def test_a_scorecard_of_two_scenarios_names_each_systems_verdict(tmp_path: Path):
    runs = tmp_path / "runs"
    for name in ("smoke/one-model-down.yaml", "extended/black-hole.yaml"):
        done = harness("run", str(SCENARIOS / name), "--sim", "--time-scale", "0.5", "--out", str(runs))
        assert done.returncode in (0, 1), done.stderr[-2000:]
    out = tmp_path / "card"
    done = harness("scorecard", str(runs), "--label", "control=passthrough", "--out", str(out))
    assert done.returncode == 0, done.stderr
    table = (out / "scorecard.md").read_text()
    assert "| scenario | resilient (simulated) | passthrough (simulated) |" in table
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"one-model-down", "black-hole"}
    assert "FAIL (uptime" in rows["one-model-down"]  # the passthrough loses a third of its answers
    cells = json.loads((out / "scorecard.json").read_text())
    assert {(c["system"], c["scenario"]) for c in cells} == {
        (system, scenario)
        for system in ("resilient (simulated)", "passthrough (simulated)")
        for scenario in ("one-model-down", "black-hole")
    }
    resilient = next(
        c for c in cells if c["scenario"] == "one-model-down" and c["system"].startswith("resilient")
    )
    assert resilient["passed"] and resilient["figures"]["uptime"] >= 0.999
    assert "<table>" in (out / "scorecard.html").read_text()


def test_a_folder_without_runs_is_refused_with_exit_2(tmp_path: Path):
    done = harness("scorecard", str(tmp_path))
    assert done.returncode == 2 and "no run folders" in done.stderr
    bad = harness("scorecard", str(tmp_path), "--label", "oops")
    assert bad.returncode == 2 and "VARIANT=NAME" in bad.stderr
