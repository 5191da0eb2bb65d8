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


def test_a_recovery_without_ejection_says_so(tmp_path: Path):
    """LiteLLM read 0.0-1.0 s on stream-cut against our 2.0 s because it never stopped sending
    requests to the cutting model (a third of them failed): the bare figure read as a win. The
    mark needs every fault the system met to show it (`kept_sending`, from the endpoints);
    a fault nobody met says nothing."""

    def variant(*kept: bool) -> dict:
        faults: list[dict] = [{"exercised": True, "kept_sending": k} for k in kept]
        faults.append({"exercised": False, "kept_sending": None})
        return {
            "passed": True,
            "verdicts": [],
            "slis": {"recovery_time_s": 1.0},
            "phases": {},
            "faults": faults,
        }

    systems = {"kept": variant(True, True), "taken": variant(True, False), "unknown": variant(False)}
    results = {"scenario": "stream-cut", "simulated": False, "variants": systems}
    (tmp_path / "results.json").write_text(json.dumps(results))
    found = cells([tmp_path])
    assert [c.kept_sending for c in found] == [True, False, False]
    [row] = [line for line in markdown(found).splitlines() if line.startswith("| stream-cut")]
    kept, taken, unknown = row.split("|")[2:5]
    assert "recovery 1.0 s (never took the model out)" in kept
    assert "recovery 1.0 s" in taken and "never" not in taken
    assert "recovery 1.0 s" in unknown and "never" not in unknown
