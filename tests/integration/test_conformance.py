"""The conformance suite against our gateway with its default config: every case passes.

`make test` runs the catalogue's fast profile: the same sixteen faults, with S15's flapping
primary asked 10 times 1.2 s apart instead of 20 times 4 s apart (77 of the full profile's
~117 s). Whether the whole catalogue takes no longer than the published reference client
(135.5 s on the full profile) is a speed figure: `make bench-peers` measures it on the full
profile and publishes it in docs/benchmarks/peers.md."""

from __future__ import annotations

import json
import subprocess
import sys

from harness.stack import PROJECT_ROOT


def test_our_gateway_with_defaults_passes_all_sixteen(tmp_path):
    out = tmp_path / "conformance"
    command = [sys.executable, "-m", "harness", "conformance", "--profile", "fast", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    results = json.loads((out / "conformance.json").read_text())
    verdicts = {case["case"]: (case["verdict"], case["reason"]) for case in results["cases"]}
    assert result.returncode == 0, (verdicts, result.stderr[-2000:])
    assert results["profile"] == "fast"
    assert results["counts"] == {"pass": 16, "partial": 0, "safe": 0, "fail": 0}
