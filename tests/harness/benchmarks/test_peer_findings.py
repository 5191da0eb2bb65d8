"""The scorecard's notes on peers: said from the run's own records and scenario, so they stay
true when a scenario changes length or rate."""

from __future__ import annotations

import csv
from pathlib import Path

from harness.benchmarks.peers import peer_findings

SCENARIO = """name: healthy-baseline
models: {count: 3}
load: {rate: 60, users: 4}
phases: {warmup: 1, baseline: 80, recovery: 1}
"""


def _litellm_run(folder: Path, rows: list[dict[str, str]]) -> Path:
    (folder / "external").mkdir(parents=True)
    (folder / "scenario.yaml").write_text(SCENARIO)
    with (folder / "external" / "records.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ok", "latency_ms", "error_kind"])
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_a_peer_that_times_out_without_a_fault_is_named_with_the_load_it_was_offered(tmp_path):
    rows = [{"ok": "True", "latency_ms": "5700", "error_kind": ""}] * 9
    rows.append({"ok": "False", "latency_ms": "30000", "error_kind": "timeout"})
    folder = _litellm_run(tmp_path / "20261202T000000-healthy-baseline", rows)
    (note,) = [line for line in peer_findings({"litellm": [folder]}) if line]
    assert "timed out 1 of 10 requests of healthy-baseline" in note
    assert "a median of 5.7 s" in note
    assert "60 requests/s for 80 s saturate this host" in note


def test_a_peer_that_kept_up_gets_no_note(tmp_path):
    rows = [{"ok": "True", "latency_ms": "40", "error_kind": ""}] * 10
    folder = _litellm_run(tmp_path / "20261202T000000-healthy-baseline", rows)
    assert peer_findings({"litellm": [folder]}) == []
