"""`chaos-harness explore` end to end: a weakened gateway's breach is found in simulation,
shrunk, written, and confirmed on the real stack (real Toxiproxy, endpoints, Locust)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_a_weakened_gateways_minimal_breach_is_confirmed_on_the_real_stack(tmp_path: Path):
    policies = tmp_path / "no-rescue.yaml"
    policies.write_text("stream: {rescues: 0}\n")
    out = tmp_path / "explore"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "explore",
            "--policies",
            str(policies),
            "--budget",
            "60",
            "--seed",
            "3",
            "--slo",
            "uptime",
            "--max-seconds",  # the shrink is the sim tests' to check: 30 s, about 4x the time
            "30",  # one search (seed 3 breaches on its 8th timeline) takes to find its breach
            "--jobs",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "timelines tried" in done.stderr  # progress while it searches
    summary = json.loads((out / "explore.json").read_text())
    (finding,) = summary["findings"]
    assert finding["replay"] == "confirmed", finding
    assert "uptime" in finding["real_breached"]
    assert finding["faults"] == 1
    assert Path(finding["real_report"]).exists() and Path(finding["simulated_report"]).exists()
    assert "confirmed" in (out / "explore.html").read_text()
