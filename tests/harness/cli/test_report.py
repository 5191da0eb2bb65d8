"""`chaos-harness report`: rebuilds every output from a run's files and compares two runs."""

from __future__ import annotations

import json

from click.testing import CliRunner

from harness.cli import cli
from tests.reports.synthetic import outage_run


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_report_rebuilds_the_outputs_from_the_files_alone(tmp_path):
    folder = outage_run(tmp_path / "run", fault=(10.0, 20.0), back_after=2.0)
    result = invoke("report", str(folder))
    assert result.exit_code == 0, result.output
    assert "uptime" in result.output and "=> PASS" in result.output
    for name in ("results.json", "report.html", "summary.md", "junit.xml"):
        assert (folder / name).stat().st_size > 0
    assert json.loads((folder / "results.json").read_text())["scenario"] == "synthetic"


def test_compare_fails_when_a_watched_sli_regresses_past_the_tolerance(tmp_path):
    good = outage_run(tmp_path / "good", fault=(10.0, 20.0), back_after=2.0)
    slow = outage_run(tmp_path / "slow", fault=(10.0, 20.0), back_after=8.0)
    result = invoke("report", str(slow), "--compare", str(good), "--fail-on", "recovery_time_s")
    assert result.exit_code == 1, result.output
    assert "REGRESSED" in result.output and "regressed past 10%: recovery_time_s" in result.output
    same = invoke("report", str(good), "--compare", str(good))
    assert same.exit_code == 0, same.output


def test_report_on_a_folder_that_is_not_a_run_exits_2(tmp_path):
    result = invoke("report", str(tmp_path))
    assert result.exit_code == 2
    assert "scenario.yaml: missing" in result.output
