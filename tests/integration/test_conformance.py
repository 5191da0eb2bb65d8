"""The conformance suite against our gateway with its default config, on the full profile: every
case passes, and the whole catalogue takes no longer than the published reference client."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.stack import PROJECT_ROOT

REFERENCE_SECONDS = 135.5
"""The reference client's run time on the full profile (failoverbench results/full, 2026-09-12)."""


def test_our_gateway_with_defaults_passes_all_sixteen_within_the_reference_time(tmp_path):
    out = tmp_path / "conformance"
    command = [sys.executable, "-m", "harness", "conformance", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    results = json.loads((out / "conformance.json").read_text())
    verdicts = {case["case"]: (case["verdict"], case["reason"]) for case in results["cases"]}
    assert result.returncode == 0, (verdicts, result.stderr[-2000:])
    assert results["counts"] == {"pass": 16, "partial": 0, "safe": 0, "fail": 0}
    assert results["run_seconds"] <= REFERENCE_SECONDS
