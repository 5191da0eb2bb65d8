"""The search for breaches: fair timelines from the whole catalogue, a weakened gateway's breach
found and shrunk, a breach kept in the database and tried first next time."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from harness.scenario import Scenario, load_scenario, parse_scenario
from harness.sim import explore as explore_module
from harness.sim import simulate_variant
from harness.sim.explore import BASE, Search, explore
from harness.sim.timelines import survivable, timelines
from reports import build

MODELS = ["model-0", "model-1", "model-2"]
NO_RESCUE = {"stream": {"rescues": 0}}
"""A weakened gateway: a stream cut after its first token reaches the client cut."""


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(timelines(MODELS))
def test_every_timeline_drawn_is_a_valid_scenario_that_spares_a_model_at_every_moment(timeline):
    scenario = parse_scenario({"name": "drawn", "models": {"count": 3}, **timeline})
    assert 1 <= len(scenario.faults) <= 3
    assert survivable(timeline["faults"], timeline["admin"], MODELS)
    assert all(fault.for_ >= 2.0 for fault in scenario.faults)


def test_a_timeline_that_touches_every_model_at_once_is_not_fair():
    faults = [
        {"at": 0.0, "for": 4.0, "target": "model-0", "down": True},
        {"at": 2.0, "for": 4.0, "target": ["model-1", "model-2"], "down": True},
    ]
    assert not survivable(faults, [], MODELS)
    assert survivable([faults[0], {**faults[1], "at": 4.0}], [], MODELS)
    isolate = {"at": 1.0, "for": 2.0, "action": "isolate", "target": "model-1", "reason": "x"}
    assert not survivable([{**faults[0], "target": ["model-0", "model-2"]}], [isolate], MODELS)


def breached(scenario: Scenario, folder: Path) -> set[str]:
    """The SLIs `scenario` breaches in simulation, our gateway as the system under test."""
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True)))
    simulate_variant(scenario.scaled(), "resilient", folder / "resilient")
    verdicts = build(folder, plots=False).results["variants"]["resilient"]["verdicts"]
    return {v["sli"] for v in verdicts if v["status"] == "fail"}


def test_a_weakened_gateways_breach_is_found_shrunk_and_written_as_a_scenario(tmp_path: Path):
    database = tmp_path / "db"
    search = Search(dict(BASE), NO_RESCUE, frozenset({"uptime"}))
    found = explore(
        search, tmp_path / "out", budget=80, seed=3, database=database, replay=False, progress=lambda _: None
    )
    assert len(found.findings) == 1
    finding = found.findings[0]
    assert "uptime" in finding.slis
    scenario = load_scenario(finding.file)  # a valid scenario file, as written
    assert scenario.system_under_test.policies == NO_RESCUE
    shown = yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True))
    assert 1 <= len(scenario.faults) <= 2, shown
    assert all(fault.for_ == 2.0 for fault in scenario.faults), shown  # the shortest windows
    # Minimal: without any one of its faults, the timeline no longer breaches.
    for index in range(len(scenario.faults)):
        fewer = scenario.model_copy(
            update={"faults": [f for i, f in enumerate(scenario.faults) if i != index]}
        )
        if fewer.faults:
            assert "uptime" not in breached(fewer, tmp_path / f"without-{index}"), shown
    assert "uptime" in scenario.description
    assert finding.simulated_report is not None and finding.simulated_report.exists()
    assert (tmp_path / "out" / "explore.html").exists()
    # The database keeps it: the next search tries it first.
    again = explore(
        search,
        tmp_path / "again",
        budget=80,
        seed=99,
        database=database,
        replay=False,
        progress=lambda _: None,
    )
    assert len(again.findings) == 1 and again.examples <= 2


def test_the_default_policies_survive_a_fixed_budget_with_a_fixed_seed(tmp_path: Path):
    """Every SLO searched by default (the p95 increase only when asked: see ASKED_FOR_ONLY)."""
    search = Search(dict(BASE), {})
    found = explore(search, tmp_path, budget=120, seed=11, replay=False, progress=lambda _: None, jobs=2)
    assert found.examples == 120
    assert found.findings == [], [f.file.read_text() for f in found.findings]


class OneSecondASimulation(Search):
    """A search whose every simulated run moves the explore module's clock on by one second."""

    __slots__ = ()

    def breaches(self, scenario: Scenario, scratch: Path) -> list[dict[str, Any]]:
        NOW[0] += 1.0
        return Search.breaches(self, scenario, scratch)


NOW = [0.0]


def test_max_seconds_ends_the_shrink_too_and_the_finding_keeps_only_faults_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unbounded, this search shrinks its breach for about 130 simulations (a minute here); its
    first breach is its 8th timeline, so 11 s of one-second simulations end the shrink early."""
    monkeypatch.setattr(explore_module, "time", SimpleNamespace(monotonic=lambda: NOW[0]))
    search = OneSecondASimulation(dict(BASE), NO_RESCUE, frozenset({"uptime"}))
    found = explore(
        search, tmp_path, budget=80, seed=3, replay=False, progress=lambda _: None, max_seconds=11
    )
    (finding,) = found.findings
    assert "uptime" in finding.slis
    assert found.examples + found.shrink_steps <= 12, (found.examples, found.shrink_steps)
    assert found.shrink_steps > 0  # it was shrinking when the time ran out
    scenario = load_scenario(finding.file)
    assert len(scenario.faults) == 1, yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True))
    # The user is told the shrink was cut short, and the file does not claim a minimal timeline.
    assert found.cut_short and not finding.shrunk
    assert json.loads((tmp_path / "explore.json").read_text())["findings"][0]["shrunk"] is False
    assert "shrunk until --max-seconds passed" in scenario.description
    assert "minimal timeline" not in scenario.description
