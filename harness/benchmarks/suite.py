"""The full scenario suite at full length, resilient vs control, as one table of SLIs.

Each scenario runs through the real chain (endpoints, Toxiproxy, gateway, Locust) exactly as
`chaos-harness run` does; the table quotes each run's results.json. Run with `make bench` or
`python -m harness.benchmarks.suite [--suite scenarios/full.suite] [--time-scale 1]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

from harness.benchmarks.readme import bench_command, publish
from harness.run import Runner
from harness.scenario import load_scenario, scenario_files
from harness.stack.processes import raise_on_sigterm
from reports.slo import show

COLUMNS = (
    ("uptime", "uptime"),
    ("failure_impact", "failure impact"),
    ("recovery_time_s", "recovery"),
    ("fallback_latency_increase", "p95 increase"),
    ("degraded_capacity", "capacity"),
)


def run_suite(suite: Path, out: Path, time_scale: float) -> list[dict[str, Any]]:
    """Run every scenario of `suite`; return each one's results.json."""
    runner = Runner(out, progress=lambda line: None)
    collected = []
    for path in scenario_files(suite):
        scenario = load_scenario(path).model_copy(update={"time_scale": time_scale})
        started = time.monotonic()
        result = runner.run(scenario)
        assert result.report is not None
        results = result.report.results
        results["wall_seconds"] = round(time.monotonic() - started, 1)
        results["file"] = str(path)
        collected.append(results)
        state = "PASS" if result.report.passed else "FAIL"
        print(
            f"{state}  {scenario.name:<24} {results['wall_seconds']:6.1f}s  {result.report.html}", flush=True
        )
    return collected


def _pair(results: dict[str, Any], sli: str) -> str:
    values = [results["variants"][name]["slis"].get(sli) for name in ("resilient", "control")]
    never = [v is None and results["windows"] and sli == "recovery_time_s" for v in values]
    shown = ["never" if n else show(sli, v) for v, n in zip(values, never, strict=True)]
    return " / ".join(shown)


def render(collected: list[dict[str, Any]], command: str, time_scale: float) -> str:
    passed = sum(1 for r in collected if r["passed"])
    bit = sum(1 for r in collected if r["bite"]["bit"])
    faulty = sum(1 for r in collected if r["windows"])
    versions = collected[0]["versions"] if collected else {}
    lines = [
        "## The scenario suite, resilient vs control",
        "",
        f"Command: `{command}`; time scale {time_scale:g}; machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"toxiproxy-server {versions.get('toxiproxy-server', '?')}, "
        f"locust {versions.get('locust', '?')}. Each cell is resilient / control; verdicts judge the "
        "resilient gateway against the scenario's SLOs, and the bite check asks whether the control "
        "breached any.",
        "",
        "| scenario | verdict | " + " | ".join(label for _, label in COLUMNS) + " | control breached |",
        "| --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " | --- |",
    ]
    for results in collected:
        control = results["variants"].get("control", {})
        breached = [v["sli"] for v in control.get("verdicts", []) if v["status"] == "fail"]
        bite = (
            ", ".join(breached)
            if breached
            else ("nothing (no faults)" if not results["windows"] else "NOTHING")
        )
        cells = " | ".join(_pair(results, sli) for sli, _ in COLUMNS)
        verdict = "pass" if results["passed"] else "**FAIL**"
        lines.append(f"| {results['scenario']} | {verdict} | {cells} | {bite} |")
    lines += [
        "",
        f"{passed}/{len(collected)} scenarios passed every SLO; the control was hurt in {bit} of the "
        f"{faulty} scenarios with faults. A `-` is a figure with nothing to measure (no fault window).",
    ]
    failed = [r for r in collected if not r["passed"]]
    for results in failed:
        main = results["variants"][results["main"]]
        reasons = [f"{v['sli']}: {v['reason']}" for v in main["verdicts"] if v["status"] == "fail"]
        if results["bite"]["bit"] is False:
            reasons.append(results["bite"]["reason"])
        lines.append(f"- {results['scenario']}: {'; '.join(reasons)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", type=Path, default=Path("scenarios/full.suite"))
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-suite"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/suite.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    command = bench_command("harness.benchmarks.suite", argv)
    raise_on_sigterm()
    collected = run_suite(args.suite, args.runs, args.time_scale)
    text = render(collected, command, args.time_scale)
    summary = [
        {k: r[k] for k in ("scenario", "passed", "bite", "run_id", "wall_seconds", "file")}
        | {"time_scale": args.time_scale, "slis": {name: v["slis"] for name, v in r["variants"].items()}}
        for r in collected
    ]
    publish(text, summary, args.out, args.readme, "suite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
