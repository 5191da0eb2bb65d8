"""Our gateway and LiteLLM on the same scenarios, one scorecard: `make bench-peers`.

LiteLLM is installed, pinned, into a venv of its own (`.peers/litellm`, its dependencies never
meet ours) and started per scenario from the config `chaos-harness up --emit litellm` writes,
against a stack of its own with the scenario's models, seed and latency: the same faults on the
same timeline as our gateway's run. The scorecard (systems x scenarios: verdict, uptime, impact,
recovery, p99 in faults, CPU where measured) goes to docs/benchmarks/peers.md and the README.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import requests

from harness.benchmarks.combine import main as combine_main
from harness.benchmarks.readme import bench_command, publish
from harness.run import Runner
from harness.scenario import Scenario, load_scenario, scenario_files
from harness.stack import EnvironmentProblem, start_stack
from harness.stack.peer_configs import litellm as litellm_config
from harness.stack.processes import Child, free_port, raise_on_sigterm, wait_until
from reports.scorecard import cells, markdown

LITELLM = "litellm[proxy]==1.80.5"
"""Pinned: a peer's score means something only for the version named beside it."""
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
"""No fetch of the model price list at start (no internet needed) and no telemetry."""


def ensure_litellm(venv: Path) -> Path:
    """The `litellm` command of a venv holding exactly `LITELLM`, installed if it is not."""
    command = venv / "bin" / "litellm"
    stamp = venv / "installed.txt"
    if command.exists() and stamp.exists() and stamp.read_text().strip() == LITELLM:
        return command
    print(f"installing {LITELLM} into {venv} (once; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    installed = subprocess.run([*pip, LITELLM], capture_output=True, text=True)
    if installed.returncode != 0:
        raise EnvironmentProblem(
            f"pip could not install {LITELLM} into {venv} (is PyPI reachable?): {installed.stderr[-600:]}"
        )
    stamp.write_text(LITELLM + "\n")
    return command


def run_litellm(command: Path, scenario: Scenario, out: Path, folder: Path) -> Path:
    """One scenario against LiteLLM on a stack of its own; the run folder."""
    latency = scenario.models.latency.to_model()
    stack = start_stack(scenario.models.count, folder / "stack", latency=latency, seed=scenario.seed)
    child = None
    try:
        described = {**stack.describe(), "seed": scenario.seed, "latency": asdict(latency)}
        stack_file = folder / "stack.json"
        stack_file.write_text(json.dumps(described, indent=2), encoding="utf-8")
        config = folder / "litellm.yaml"
        config.write_text(litellm_config(described, scenario.system_under_test.model), encoding="utf-8")
        port = free_port()
        argv = [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        child = Child("litellm", argv, folder / "litellm.log", env=LITELLM_ENV)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _alive(url), timeout=180, child=child, what="listening")
        result = Runner(out, progress=lambda line: None).run(
            scenario, target=url, control=False, attach=stack_file, target_pid=child.pid
        )
        assert result.report is not None
        return result.report.html.parent
    finally:
        if child is not None:
            child.stop(timeout=15)
        stack.stop()


def _alive(url: str) -> bool:
    return requests.get(f"{url}/health/liveliness", timeout=2).status_code == 200


def render(table: str, command: str, time_scale: float, suite: Path, seconds: float) -> str:
    return "\n".join(
        [
            "## Our gateway beside LiteLLM",
            "",
            f"Command: `{command}`; suite `{suite}` at time scale {time_scale:g}, {seconds:.0f} s. "
            f"Systems: `resilient` is our gateway with its default policies, `control` the "
            f"passthrough gateway (no policies), `litellm` is {LITELLM.split('[')[0]} "
            f"{LITELLM.split('==')[1]} started from `chaos-harness up --emit litellm` (two retries, "
            f"a 5 s cooldown after one failed call), each scenario on a stack of its own with the "
            f"same faults on the same timeline. CPU is each gateway's process (and its children), "
            f"LiteLLM's through `--target-pid`.",
            "",
            "\n".join(line for line in table.splitlines() if not line.startswith("# ")).strip(),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", type=Path, default=Path("scenarios/smoke"))
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--venv", type=Path, default=Path(".peers/litellm"))
    parser.add_argument("--runs", type=Path, default=Path("runs/peers"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/peers.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    command = bench_command("harness.benchmarks.peers", argv)
    if argv is None and len(sys.argv) == 1:
        command = "make bench-peers"
    raise_on_sigterm()  # so the stacks' and LiteLLM's finally blocks run when stopped
    try:
        litellm = ensure_litellm(args.venv)
    except (EnvironmentProblem, subprocess.CalledProcessError) as exc:
        print(f"bench-peers: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    folders: list[Path] = []
    ours = Runner(args.runs / "ours", progress=lambda line: None)
    for path in scenario_files(args.suite):
        scenario = load_scenario(path).model_copy(update={"time_scale": args.time_scale})
        result = ours.run(scenario)
        assert result.report is not None
        folders.append(result.report.html.parent)
        print(f"ours     {scenario.name:<24} {'PASS' if result.report.passed else 'FAIL'}", flush=True)
        with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
            folder = run_litellm(litellm, scenario.scaled(), args.runs / "litellm", Path(tmp))
        folders.append(folder)
        passed = json.loads((folder / "results.json").read_text())["passed"]
        print(f"litellm  {scenario.name:<24} {'PASS' if passed else 'FAIL'}", flush=True)
    found = cells(folders, {"external": "litellm"})
    text = render(markdown(found), command, args.time_scale, args.suite, time.monotonic() - started)
    data = {"litellm": LITELLM, "time_scale": args.time_scale, "cells": [asdict(c) for c in found]}
    publish(text, data, args.out, args.readme, "peers")
    combine_main([])  # docs/benchmarks.md shows every part
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
