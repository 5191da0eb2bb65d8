"""Every minimal timeline `explore` found against our defaults stays fixed: each is simulated
(deterministic, about a second) and must pass every SLO the search judges. The files say what
broke and what fixed it; a regression brings the breach back here, with its scenario to replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import load_scenario
from harness.sim import simulate_variant
from harness.sim.explore import ASKED_FOR_ONLY, NOT_SIMULATED
from reports import build

FOUND = sorted((Path(__file__).parent / "found").glob("*.yaml"))


def test_there_are_findings_to_check():
    assert len(FOUND) >= 5


@pytest.mark.parametrize("path", FOUND, ids=lambda p: p.stem)
def test_a_breach_explore_found_stays_fixed(path: Path, tmp_path: Path):
    scenario = load_scenario(path).scaled()
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "scenario.yaml").write_text(path.read_text())
    simulate_variant(scenario, "resilient", folder / "resilient")
    verdicts = build(folder, plots=False).results["variants"]["resilient"]["verdicts"]
    judged = [v for v in verdicts if v["sli"].split("{")[0] not in NOT_SIMULATED | ASKED_FOR_ONLY]
    breached = [f"{v['sli']}: {v['reason']}" for v in judged if v["status"] == "fail"]
    assert judged and not breached, breached
