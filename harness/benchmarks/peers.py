"""Our gateway, LiteLLM and Portkey on the same scenarios, one scorecard: `make bench-peers`.

LiteLLM is installed, pinned, into a venv of its own (`.peers/litellm`, its dependencies never
meet ours), the open-source Portkey gateway, pinned, with npm into `.peers/portkey`; each is
started per scenario the way `chaos-harness run --target-cmd` starts any gateway: from the
config `up --emit` writes (Portkey's sent in every request's `x-portkey-config` header, as
`--target-header` sends it), against a stack of its own with the scenario's models, seed and
latency, so it meets the same faults on the same timeline as our gateway's run. The scorecard
(systems x scenarios: verdict, uptime, impact, recovery, p99 in faults, CPU where measured) goes
to docs/benchmarks/peers.md and the README.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.benchmarks.combine import main as combine_main
from harness.benchmarks.readme import bench_command, publish
from harness.conformance import load as load_catalogue
from harness.conformance import run_conformance
from harness.run import Runner
from harness.run.target_command import TargetCommand
from harness.scenario import Scenario, load_scenario, scenario_files
from harness.stack import EnvironmentProblem
from harness.stack.processes import raise_on_sigterm
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


PORTKEY = "@portkey-ai/gateway@1.15.2"
"""Pinned, as LiteLLM is."""
PORTKEY_SERVER_PIN = ("@hono/node-server", "1.13.8")
"""Portkey's gateway takes any `@hono/node-server` 1.x, and npm picks the newest (1.19 here),
with which it answers every stream 500 (`TypeError: immutable`: it adds headers to a fetched
response, which later versions no longer allow; Portkey-AI/gateway issue #1389). Measured here
on Node.js 20.20.2: 1.14.2 fails the same way, 1.13.8 streams. Pinned, so the scorecard measures
its failover rather than that bug."""


def ensure_portkey(prefix: Path) -> Path:
    """The Portkey gateway's server script under an npm prefix holding exactly `PORTKEY` (and
    `PORTKEY_SERVER_PIN`), installed if it is not (Node.js from the system; `npx` would fetch it
    on every start)."""
    package = prefix / "node_modules" / "@portkey-ai" / "gateway"
    stamp = prefix / "installed.txt"
    pinned = f"{PORTKEY} {'@'.join(PORTKEY_SERVER_PIN)}"
    if stamp.exists() and stamp.read_text().strip() == pinned:
        return _portkey_server(package)
    if shutil.which("npm") is None:
        raise EnvironmentProblem(
            "npm is not installed: Portkey's gateway needs Node.js (apt install nodejs npm)"
        )
    print(f"installing {pinned} into {prefix} (once)", flush=True)
    prefix.mkdir(parents=True, exist_ok=True)
    name, version = PORTKEY.rsplit("@", 1)
    manifest = {"private": True, "dependencies": {name: version}, "overrides": dict([PORTKEY_SERVER_PIN])}
    (prefix / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    npm = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix)]
    installed = subprocess.run(npm, capture_output=True, text=True)
    if installed.returncode != 0:
        raise EnvironmentProblem(
            f"npm could not install {pinned} into {prefix} (is the npm registry reachable?): "
            f"{installed.stderr[-600:]}"
        )
    stamp.write_text(pinned + "\n")
    return _portkey_server(package)


def _portkey_server(package: Path) -> Path:
    """The script the package's `bin` names (its start-server)."""
    manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
    scripts = manifest["bin"]
    script = scripts if isinstance(scripts, str) else next(iter(scripts.values()))
    return package / script


def portkey_command(server: Path) -> TargetCommand:
    """Portkey's gateway as `--target-cmd` starts it, its config in every request's header."""
    return TargetCommand(
        f"node {server} --port={{port}} --headless", headers=(("x-portkey-config", "@{portkey}"),)
    )


def litellm_command(command: Path) -> TargetCommand:
    """LiteLLM's proxy as `--target-cmd` starts it: from the config written for each stack."""
    return TargetCommand(f"{command} --config {{litellm}} --host 127.0.0.1 --port {{port}}", env=LITELLM_ENV)


def run_peer(target: TargetCommand, scenario: Scenario, out: Path) -> Path:
    """One scenario against a peer gateway, started on a stack of its own (`run --target-cmd`);
    the run folder."""
    result = Runner(out, progress=lambda line: None).run(scenario, control=False, target_command=target)
    assert result.report is not None
    return result.report.html.parent


def conformance_table(results: dict[str, dict[str, Any]]) -> str:
    """The conformance suite, case by case, one column per system."""
    names = list(results)
    lines = [f"| case | name | {' | '.join(names)} |", f"| --- | --- |{' --- |' * len(names)}"]
    for row in zip(*(r["cases"] for r in results.values()), strict=True):
        cells_ = [f"{c['verdict']} ({c['elapsed']:.1f} s)" for c in row]
        lines.append(f"| {row[0]['case']} | {row[0]['name']} | {' | '.join(cells_)} |")
    totals = [
        f"**{r['counts']['pass']} pass**, {r['counts']['partial']} partial, {r['counts']['safe']} safe, "
        f"{r['counts']['fail']} fail in {r['run_seconds']} s"
        for r in results.values()
    ]
    lines.append(f"| all | | {' | '.join(totals)} |")
    return "\n".join(lines)


def peer_findings(folders: dict[str, list[Path]]) -> list[str]:
    """What the peers' own logs and records say about failures that are not failover, counted
    from this run's folders, so the scorecard is read for what it measures."""
    found = []
    logs = [folder / "target" / "target.log" for folder in folders.get("portkey", [])]
    immutable = sum(
        log.read_text(errors="replace").count("TypeError: immutable") for log in logs if log.exists()
    )
    if immutable:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        found.append(
            f"Portkey, on this machine's Node.js {node}, answered {immutable} streamed requests 500 "
            f"(`TypeError: immutable` in its response-header update, in `target/target.log`), "
            f"so its stream rows measure that, not failover."
        )
    for folder in folders.get("litellm", []):
        records = folder / "external" / "records.csv"
        if folder.name.endswith("healthy-baseline") and records.exists():
            with records.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle))
            timeouts = sum(1 for row in rows if row.get("error_kind") == "timeout")
            answered = sorted(float(row["latency_ms"]) for row in rows if row.get("ok") == "True")
            p50 = answered[len(answered) // 2] / 1000 if answered else 0.0
            if timeouts or p50 >= 1.0:
                offered = load_scenario(folder / "scenario.yaml")
                found.append(
                    f"LiteLLM (one proxy worker, as its config starts it) timed out {timeouts} of "
                    f"{len(rows):,} requests of healthy-baseline, which has no fault, and answered the "
                    f"rest at a median of {p50:.1f} s: at its CPU per request, {offered.load.rate:g} "
                    f"requests/s for {offered.phases.baseline:g} s saturate this host."
                )
    return [" ".join(found), ""] if found else []


def render(
    table: str,
    conformance: str,
    command: str,
    time_scale: float,
    suite: Path,
    seconds: float,
    findings: list[str],
) -> str:
    return "\n".join(
        [
            "## Our gateway beside LiteLLM and Portkey",
            "",
            f"Command: `{command}`; suite `{suite}` at time scale {time_scale:g}, {seconds:.0f} s. "
            f"Systems: `resilient` is our gateway with its default policies, `control` the "
            f"passthrough gateway (no policies), `litellm` is {LITELLM.split('[')[0]} "
            f"{LITELLM.split('==')[1]} started from `chaos-harness up --emit litellm` (two retries, "
            f"a 5 s cooldown after one failed call), `portkey` the open-source Portkey gateway "
            f"{PORTKEY.rsplit('@', 1)[1]} (Node.js, its `@hono/node-server` pinned to "
            f"{PORTKEY_SERVER_PIN[1]}: with the newest, which npm picks, it answers every stream 500, "
            f"Portkey-AI/gateway issue #1389) with the config `up --emit portkey` writes, sent "
            f"in each request's `x-portkey-config` header (fallback over the models in priority "
            f"order, the primary retried twice on 429 and 5xx, as failoverbench runs it; it has "
            f"no circuit breaker), each scenario "
            f"on a stack of its own with the same faults on the same timeline. CPU is each "
            f"gateway's process (and its children), the peers started and measured by "
            f"`run --target-cmd`.",
            "",
            "\n".join(line for line in table.splitlines() if not line.startswith("# ")).strip(),
            "",
            *findings,
            "The conformance suite (`chaos-harness conformance`, profile `full`), the peers started "
            "by `conformance --target-cmd`: LiteLLM from a config that routes every case's model to "
            "the primary and `fb-ok` to the secondary, the fallback named per request as the "
            "catalogue sends it; Portkey with a fallback config over the primary (the case's model "
            "passed on, retried twice on 429 and 5xx) and the secondary as `fb-ok`, sent in every "
            "request's `x-portkey-config` header (`--target-header`):",
            "",
            conformance,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", type=Path, default=Path("scenarios/smoke"))
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--venv", type=Path, default=Path(".peers/litellm"))
    parser.add_argument("--portkey-prefix", type=Path, default=Path(".peers/portkey"))
    parser.add_argument("--runs", type=Path, default=Path("runs/peers"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/peers.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument(
        "--rejudge",
        action="store_true",
        help="judge the last run's folders (under --runs) again with the current reports and "
        "publish the result; nothing is run",
    )
    args = parser.parse_args(argv)
    if args.rejudge:
        return rejudge(args.runs, args.out, args.readme, args.suite)
    command = bench_command("harness.benchmarks.peers", argv)
    if argv is None and len(sys.argv) == 1:
        command = "make bench-peers"
    raise_on_sigterm()  # so the stacks' and the peers' finally blocks run when stopped
    try:
        litellm = ensure_litellm(args.venv)
        peers = {
            "litellm": litellm_command(litellm),
            "portkey": portkey_command(ensure_portkey(args.portkey_prefix)),
        }
    except (EnvironmentProblem, subprocess.CalledProcessError) as exc:
        print(f"bench-peers: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    found = []
    peer_folders: dict[str, list[Path]] = {name: [] for name in peers}
    ours = Runner(args.runs / "ours", progress=lambda line: None)
    for path in scenario_files(args.suite):
        scenario = load_scenario(path).model_copy(update={"time_scale": args.time_scale})
        result = ours.run(scenario)
        assert result.report is not None
        found += cells([result.report.html.parent])
        print(f"ours     {scenario.name:<24} {'PASS' if result.report.passed else 'FAIL'}", flush=True)
        for name, target in peers.items():
            folder = run_peer(target, scenario, args.runs / name)
            found += cells([folder], {"external": name})
            peer_folders[name].append(folder)
            passed = json.loads((folder / "results.json").read_text())["passed"]
            print(f"{name:<8} {scenario.name:<24} {'PASS' if passed else 'FAIL'}", flush=True)
    catalogue = load_catalogue("full")
    quiet = lambda line: None  # noqa: E731
    ours_folder = args.runs / "conformance" / "ours"
    conformance = {"resilient": run_conformance(catalogue, ours_folder, progress=quiet)}
    for name, target in peers.items():
        folder = args.runs / "conformance" / name
        conformance[name] = run_conformance(catalogue, folder, target_command=target, progress=quiet)
    for system, scored in conformance.items():
        print(f"{system:<9} conformance: {scored['counts']['pass']}/{len(scored['cases'])} pass", flush=True)
    table = conformance_table(conformance)
    seconds = time.monotonic() - started
    text = render(
        markdown(found), table, command, args.time_scale, args.suite, seconds, peer_findings(peer_folders)
    )
    data = {
        "litellm": LITELLM,
        "portkey": PORTKEY,
        "portkey_server_pin": "@".join(PORTKEY_SERVER_PIN),
        "time_scale": args.time_scale,
        "command": command,
        "seconds": seconds,
        "cells": [asdict(c) for c in found],
        "conformance": conformance,
    }
    publish(text, data, args.out, args.readme, "peers")
    combine_main([])  # docs/benchmarks.md shows every part
    return 0


def rejudge(runs: Path, out: Path, readme: Path, suite: Path) -> int:
    """Publish the last run's table again, each scenario's newest run folder judged by the
    reports as they are now (`reports.build`): a change to how a figure is judged reaches
    the page without another half hour of load. The conformance scores are kept as run."""
    from reports import build

    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    found = []
    peer_folders: dict[str, list[Path]] = {}
    for system in ("ours", *PEERS):
        folders = newest_runs(runs / system)
        for folder in folders:
            build(folder)
        found += cells(folders, {"external": system} if system in PEERS else None)
        if system in PEERS:
            peer_folders[system] = folders
    order = [cell.system for cell in found]
    found.sort(key=lambda cell: (cell.scenario, order.index(cell.system)))  # as a full run lists them
    table = conformance_table(data["conformance"])
    text = render(
        markdown(found),
        table,
        data["command"],
        data["time_scale"],
        suite,
        data["seconds"],
        peer_findings(peer_folders),
    )
    data["cells"] = [asdict(c) for c in found]
    publish(text, data, out, readme, "peers")
    combine_main([])
    return 0


PEERS = ("litellm", "portkey")


def newest_runs(folder: Path) -> list[Path]:
    """The newest run folder (named STAMP-SCENARIO) of each scenario in `folder`, by scenario."""
    newest: dict[str, Path] = {}
    for run in sorted(p for p in folder.iterdir() if (p / "results.json").exists()):
        newest[run.name.split("-", 1)[1]] = run
    return [newest[name] for name in sorted(newest)]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
