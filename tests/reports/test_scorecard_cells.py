"""A scorecard cell says why a system failed, also when no SLO was breached: LiteLLM failed
flapping-model with every SLO met because it never sent the flapping model a request again,
and the table read "FAIL ()"."""

from __future__ import annotations

import json
from pathlib import Path

from reports.scorecard import cells, markdown


def test_a_fault_the_system_never_met_is_named_in_its_cell(tmp_path: Path):
    unmet = {"fault": 1, "kind": "down", "models": ["model-0"], "exercised": False, "basis": "no traffic"}
    met = {**unmet, "fault": 0, "exercised": True}
    variant = {
        "passed": False,
        "verdicts": [{"sli": "uptime", "status": "pass"}],
        "exercised": [met, unmet],
        "slis": {"uptime": 1.0},
        "phases": {"faults": {"p99_ms": 40.0}},
    }
    results = {"scenario": "flapping-model", "simulated": False, "variants": {"external": variant}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    [cell] = cells([tmp_path], {"external": "litellm"})
    assert cell.system == "litellm" and not cell.passed
    assert cell.breached == ("1 fault(s) not exercised",)
    assert "FAIL (1 fault(s) not exercised)" in markdown([cell])
