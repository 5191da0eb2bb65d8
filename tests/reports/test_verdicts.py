"""Targets, thresholds, verdicts and the bite check: pure functions, known answers."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from reports import DEFAULT_TARGETS, Threshold, ThresholdError, bite, build, judge, targets
from reports.results import failures
from reports.stats import answers_to_bound, quantile_interval
from tests.reports.synthetic import outage_run


@pytest.mark.parametrize(
    ("text", "sli", "op", "value", "phase"),
    [
        ("uptime >= 99.95%", "uptime", ">=", 0.9995, None),
        ("p99_ms < 800", "p99_ms", "<", 800.0, None),
        ("p99_ms{phase:faults} < 800", "p99_ms", "<", 800.0, "faults"),
        ("  recovery_time_s<=30 ", "recovery_time_s", "<=", 30.0, None),
    ],
)
def test_thresholds_parse_in_the_k6_style(text, sli, op, value, phase):
    threshold = Threshold.parse(text)
    assert (threshold.sli, threshold.op, threshold.value, threshold.phase) == (
        sli,
        op,
        pytest.approx(value),
        phase,
    )


@pytest.mark.parametrize("text", ["uptime", "uptime >> 3", "p99_ms{phase:lunch} < 3", "uptime >= lots"])
def test_bad_thresholds_say_why(text):
    with pytest.raises(ThresholdError):
        Threshold.parse(text)


def test_the_defaults_are_the_specs():
    assert {t.text for t in DEFAULT_TARGETS} >= {
        "uptime >= 99.9%",
        "recovery_time_s <= 30",
        "failure_impact <= 5%",
        "fallback_latency_increase <= 10%",
        "degraded_capacity >= 90%",
        "resource_overhead <= 20%",
        "latency_overhead_p50 <= 5%",
    }


def test_scenario_overrides_replace_add_and_switch_off():
    chosen = {
        t.key: t
        for t in targets({"uptime": ">= 99%", "p99_ms{phase:faults}": "< 800", "failure_impact": False})
    }
    assert chosen["uptime"].value == pytest.approx(0.99)
    assert chosen["p99_ms{phase:faults}"].op == "<"
    assert "failure_impact" not in chosen
    assert targets(["ttft_p50_ms < 200"])[-1].sli == "ttft_p50_ms"


def test_an_override_naming_an_unknown_sli_names_the_key():
    with pytest.raises(ThresholdError, match=r"slo\.uptim: unknown SLI"):
        targets({"uptim": ">= 99%"})


def test_judging_passes_fails_and_skips_with_reasons():
    slis = {"uptime": 0.998, "failure_impact": 0.01, "recovery_time_s": None, "faults": [], "phases": {}}
    verdicts = {v.sli: v for v in judge(slis, targets(None), against_control=False)}
    assert verdicts["uptime"].status == "fail" and "99.8%" in verdicts["uptime"].reason
    assert verdicts["failure_impact"].status == "pass"
    assert verdicts["recovery_time_s"].status == "skipped"
    assert "latency_overhead_p50" not in verdicts  # no control, no cross-variant verdicts


def _overhead_verdict(interval):
    slis = {"latency_overhead_p50": 0.02, "phases": {}, "faults": [], "intervals": {}}
    if interval is not None:
        slis["intervals"]["latency_overhead_p50"] = interval
    (verdict,) = [
        v for v in judge(slis, targets(None), against_control=True) if v.sli == "latency_overhead_p50"
    ]
    return verdict


def test_a_statistical_slo_is_judged_on_its_interval_and_says_when_it_cannot_tell():
    assert _overhead_verdict([-0.01, 0.04]).status == "pass"
    failed = _overhead_verdict([0.06, 0.2])
    assert failed.status == "fail" and "95% interval 6% to 20%" in failed.reason
    straddles = _overhead_verdict([-0.03, 0.09])
    assert straddles.status == "inconclusive" and "straddles" in straddles.reason
    assert straddles.interval == (-0.03, 0.09)
    assert _overhead_verdict(None).status == "inconclusive"  # no samples to bound it: never a pass
    open_above = _overhead_verdict([0.01, None])
    assert open_above.status == "inconclusive"  # an unbounded side
    # ... and it says how many answers would bound it, since re-running would not.
    assert "bounding a p50 takes at least 6 answers" in open_above.reason
    assert "answers" not in straddles.reason


def test_the_answers_a_percentile_needs_are_where_its_interval_closes():
    rng = np.random.default_rng(3)
    for q in (50, 95, 99):
        needed = answers_to_bound(q)
        assert all(math.isfinite(end) for end in quantile_interval(rng.random(needed), q))
        assert not all(math.isfinite(end) for end in quantile_interval(rng.random(needed - 1), q))
    assert answers_to_bound(99) == 368


def test_a_29x_increase_on_160_samples_fails_instead_of_being_skipped(tmp_path):
    import numpy as np

    from reports.stats import ratio_interval

    rng = np.random.default_rng(4)
    base, faulted = rng.normal(30, 3, 160), rng.normal(30 * 29, 60, 160)
    slis = {"fallback_latency_increase": 28.0, "phases": {}, "faults": [{"x": 1}]}
    slis["intervals"] = {"fallback_latency_increase": list(ratio_interval(faulted, base, 95))}
    (verdict,) = [
        v for v in judge(slis, targets(None), against_control=False) if v.sli == "fallback_latency_increase"
    ]
    assert verdict.status == "fail"


def test_a_fault_that_does_not_hurt_the_control_did_not_bite():
    calm = judge({"uptime": 1.0, "phases": {}, "faults": []}, targets(None), against_control=False)
    assert bite(calm, has_faults=True)["bit"] is False
    hurt = judge({"uptime": 0.5, "phases": {}, "faults": []}, targets(None), against_control=False)
    assert bite(hurt, has_faults=True)["bit"] is True
    assert bite(calm, has_faults=False)["checked"] is False


def test_build_writes_every_output_and_judges_a_run(tmp_path):
    report = build(outage_run(tmp_path / "run", fault=(10.0, 20.0), back_after=3.0))
    results = json.loads((report.folder / "results.json").read_text())
    assert results["passed"] is report.passed is True
    verdicts = {v["sli"]: v for v in results["variants"]["resilient"]["verdicts"]}
    assert verdicts["uptime"]["status"] == "pass"
    assert verdicts["recovery_time_s"]["measured"] == pytest.approx(3.0, abs=1.0)
    assert results["bite"]["bit"] is True  # the control lost every request in the window
    html = (report.folder / "report.html").read_text()
    assert html.index('id="verdicts"') < html.index("data:image/png;base64,")
    assert html.count("data:image/png;base64,") == 4
    suite = ET.parse(report.folder / "junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert "uptime" in cases and "fault_bites_control" in cases
    assert "| `uptime` |" in (report.folder / "summary.md").read_text()


def test_a_breach_shows_as_a_failed_junit_case_with_measured_vs_target(tmp_path):
    folder = outage_run(tmp_path / "run", fault=(10.0, 20.0), back_after=45.0)  # never back in the run
    report = build(folder, plots=False)
    assert not report.passed
    assert any(line.startswith("recovery_time_s: measured never") for line in failures(report.results))
    suite = ET.parse(folder / "junit.xml").getroot()
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["recovery_time_s"]
    # Passing cases carry their figures too, and every element its time (CI tools require it).
    uptime = next(c for c in suite.iter("testcase") if c.get("name") == "uptime")
    properties = {p.get("name"): p.get("value") for p in uptime.iter("property")}
    assert properties["verdict"] == "pass" and properties["measured"] and properties["target"]
    assert all(c.get("time") == "0" for c in suite.iter("testcase"))
    planned = sum(report.results["phases"].values()) * len(report.results["variants"])
    assert float(suite.find("testsuite").get("time")) == round(planned, 3) > 0
    assert float(suite.get("time")) == float(suite.find("testsuite").get("time"))
