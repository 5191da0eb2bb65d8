"""One scenario run: the stack, the system under test, Locust, the fault timeline, the records.

The scenario runs against the resilient gateway, then against the passthrough control. Faults
are applied as differences of `Timeline.active_faults(t)` on every tick, each change recorded
with the time it actually took effect. Whatever happens (normal end, Ctrl-C, SIGTERM, a child
dying) the `finally` blocks remove every toxic and stop every process the run started, and the
files already written stay on disk.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import requests
import yaml

from harness.faults import EndpointFault
from harness.processes import (
    Child,
    EnvironmentProblem,
    free_port,
    port_is_free,
    python_module,
    raise_on_sigterm,
)
from harness.rehearsal import AdminApplier
from harness.scenario import Scenario
from harness.stack import GROUP, Stack, gateway_config, start_stack
from harness.timeline import ActiveFault, Timeline
from reports import Report, build

TICK = 0.1
START_DELAY = 1.0
"""Seconds between launching Locust and the run's t=0, so its users are spawned by then."""


@dataclass
class VariantResult:
    name: str
    folder: Path
    records: int = 0
    locust_total: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    folder: Path
    variants: list[VariantResult]
    report: Report | None = None


class FaultApplier:
    """Turns timeline differences into Toxiproxy and endpoint calls, logging each change."""

    def __init__(self, stack: Stack, log: TextIO, t0: float) -> None:
        self.stack = stack
        self.log = log
        self.t0 = t0
        self.active: dict[tuple[int, str], ActiveFault] = {}

    def _write(self, action: str, fault: ActiveFault, planned: float) -> None:
        entry = {
            "t": round(time.time() - self.t0, 4),
            "planned": round(planned, 4),
            "action": action,
            **fault.describe(),
        }
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    def apply(self, desired: dict[tuple[int, str], ActiveFault], planned: float) -> None:
        for key in [k for k in self.active if k not in desired]:
            ended = self.active.pop(key)
            self._undo(ended)
            self._write("stop", ended, planned)
        for key, fault in desired.items():
            if key not in self.active:
                self._do(fault)
                self.active[key] = fault
                self._write("start", fault, planned)

    def _do(self, fault: ActiveFault) -> None:
        spec = fault.spec
        if spec.network is not None:
            self.stack.toxics.add_toxic(
                fault.model,
                fault.toxic_name,
                spec.network.type,
                dict(spec.network.attributes),
                stream=spec.network.stream,
                toxicity=spec.network.toxicity,
            )
        elif spec.down:
            self.stack.toxics.set_enabled(fault.model, False)
        elif spec.endpoint is not None:
            self.stack.set_endpoint_fault(fault.model, EndpointFault(**spec.endpoint))

    def _undo(self, fault: ActiveFault) -> None:
        spec = fault.spec
        if spec.network is not None:
            self.stack.toxics.remove_toxic(fault.model, fault.toxic_name)
        elif spec.down:
            self.stack.toxics.set_enabled(fault.model, True)
        elif spec.endpoint is not None:
            self.stack.clear_endpoint_fault(fault.model)

    def clear_all(self, planned: float) -> None:
        self.apply({}, planned)


class RecordTail:
    """Reads the records as Locust appends to them, for live progress: the CSV itself, or with
    `--workers` each worker's own file until the master merges them at the end."""

    KEEP = 5.0
    """Seconds of rows kept: progress only looks at the last second, so memory stays flat."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: dict[Path, int] = {}
        self.headers: dict[Path, list[str]] = {}
        self.rows: list[dict[str, str]] = []

    def _sources(self) -> list[Path]:
        workers = sorted(self.path.parent.glob(f"{self.path.name}.worker*"))
        return workers or ([self.path] if self.path.exists() else [])

    def poll(self) -> None:
        for source in self._sources():
            with source.open("rb") as handle:  # bytes: csv writes \r\n, text mode would shift offsets
                handle.seek(self.offsets.get(source, 0))
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[source] = self.offsets.get(source, 0) + len(complete)
            lines = complete.decode("utf-8").splitlines()
            if source not in self.headers and lines:
                self.headers[source] = next(csv.reader([lines[0]]))
                lines = lines[1:]
            header = self.headers.get(source)
            if header:
                self.rows.extend(dict(zip(header, row, strict=False)) for row in csv.reader(lines))
        if self.rows:
            newest = max(float(r["t"] or 0) for r in self.rows[-50:])
            self.rows = [r for r in self.rows if float(r["t"] or 0) >= newest - self.KEEP]

    def window(self, start: float, end: float) -> tuple[int, int]:
        hits = [r for r in self.rows if start <= float(r["t"] or 0) < end]
        return len(hits), sum(1 for r in hits if r["ok"] != "True")


def summarize(records: list[dict[str, str]], timeline: Timeline) -> dict[str, Any]:
    """Totals, error rate and latency percentiles per phase (warm-up excluded from `all`)."""
    by_phase: dict[str, list[dict[str, str]]] = {}
    for row in records:
        by_phase.setdefault(timeline.phase(float(row["t"])), []).append(row)
    by_phase["all"] = [r for r in records if timeline.phase(float(r["t"])) != "warmup"]
    summary = {}
    for phase, rows in by_phase.items():
        latencies = sorted(float(r["latency_ms"]) for r in rows if r["latency_ms"])
        errors = sum(1 for r in rows if r["ok"] != "True")
        summary[phase] = {
            "requests": len(rows),
            "errors": errors,
            "error_rate": errors / len(rows) if rows else 0.0,
            "p50_ms": statistics.median(latencies) if latencies else None,
            "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
            "degraded": sum(1 for r in rows if r["degraded"] == "True"),
        }
    return summary


class Runner:
    """Runs scenarios; `progress` receives one line per second of a running variant."""

    def __init__(
        self,
        out: Path,
        *,
        progress: Callable[[str], None] = print,
        workers: int = 0,
        backend: str = "local",
    ) -> None:
        self.out = out
        self.progress = progress
        self.workers = workers
        self.backend = backend
        self.gateway_port = free_port()
        """One address for every gateway of this runner, so a dashboard left open follows the suite."""
        self.token = os.environ.get("CHAOS_ADMIN_TOKEN") or secrets.token_urlsafe(16)
        """The run's gateways take CHAOS_ADMIN_TOKEN over their config, so the runner must too."""

    def run(
        self,
        scenario: Scenario,
        *,
        target: str | None = None,
        control: bool = True,
        attach: Path | None = None,
        mode: str = "resilient",
    ) -> RunResult:
        scenario = scenario.scaled()
        sut = scenario.system_under_test
        if target is None and sut.kind == "external":
            target = sut.base_url
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        run_id = f"{stamp}-{scenario.name}"
        folder = self.out / run_id
        folder.mkdir(parents=True, exist_ok=False)
        (folder / "scenario.yaml").write_text(
            yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True), sort_keys=False), encoding="utf-8"
        )
        raise_on_sigterm()
        variants = []
        if attach is not None:
            stack = Stack.attach(attach)
            if len(stack.models) < scenario.models.count:
                raise EnvironmentProblem(
                    f"{attach} has {len(stack.models)} models; the scenario needs {scenario.models.count}"
                )
        else:
            start = start_stack
            if self.backend == "docker":
                from harness.docker_backend import start_docker_stack as start
            stack = start(
                scenario.models.count,
                folder / "stack",
                latency=scenario.models.latency.to_model(),
                seed=scenario.seed,
            )
        try:
            if attach is None:
                stack_file = folder / "stack" / "stack.json"
                stack_file.write_text(json.dumps(stack.describe(), indent=2), encoding="utf-8")
            versions = _versions(stack)
            plan: list[tuple[str, str | None]] = [(mode, mode)] if target is None else [("external", None)]
            if control and target is None:
                plan.append(("control", "passthrough"))
            for name, variant_mode in plan:
                variants.append(
                    self._variant(scenario, stack, folder / name, name, variant_mode, target, versions)
                )
        finally:
            stack.stop()
        result = RunResult(run_id, folder, variants)
        (folder / "summary.json").write_text(
            json.dumps(
                {
                    v.name: {"records": v.records, "locust_total": v.locust_total, "phases": v.summary}
                    for v in variants
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        result.report = build(folder)
        return result

    def _variant(
        self,
        scenario: Scenario,
        stack: Stack,
        folder: Path,
        name: str,
        mode: str | None,
        target: str | None,
        versions: dict[str, str],
    ) -> VariantResult:
        folder.mkdir(parents=True)
        timeline = Timeline(scenario)
        if mode is not None:
            policies = dict(scenario.system_under_test.policies)
            sut = scenario.system_under_test
            config = gateway_config(stack, mode, policies, folder / "audit.jsonl", sut.plan, sut.hedge_delay)
            config["admin_token"] = self.token
            url = self._start_gateway(stack, config, folder)
            shown = "$CHAOS_ADMIN_TOKEN" if os.environ.get("CHAOS_ADMIN_TOKEN") else self.token
            self.progress(f"[{name}] dashboard: {url}/dashboard  (admin token: {shown})")
        else:
            assert target is not None
            url = target
        records = folder / "records.csv"
        t0 = time.time() + START_DELAY
        load_args = [
            "--host",
            url,
            "--rate",
            str(scenario.load.rate),
            "--users",
            str(scenario.load.users),
            "--duration",
            f"{scenario.duration:.3f}",
            "--stream-share",
            str(scenario.load.stream_share),
            "--model",
            scenario.system_under_test.model if target else GROUP,
            "--request-timeout",
            str(scenario.load.request_timeout),
            "--seed",
            str(scenario.seed),
            "--t0",
            f"{t0:.6f}",
            "--records",
            str(records),
            "--summary",
            str(folder / "locust.json"),
        ]
        if self.workers:
            load_args += ["--workers", str(self.workers)]
        locust = Child("locust", python_module("harness.load", *load_args), folder / "locust.log")
        tail = RecordTail(records)
        meta = _run_meta(scenario, timeline, name, mode, url, t0, versions)
        (folder / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")  # in case we die
        gateway = stack.gateway_child if mode is not None else None
        cpu_at_start: float | None = None
        with (folder / "timeline.jsonl").open("w", encoding="utf-8") as log:
            applier = FaultApplier(stack, log, t0)
            operator = None
            if scenario.admin and mode == "resilient":
                operator = AdminApplier(url, self.token, f"scenario:{scenario.name}", log, t0)
            elif scenario.admin:
                self.progress(f"[{name}] admin steps skipped: only our resilient gateway has controls")
            try:
                while time.time() < t0:
                    time.sleep(0.01)
                stack.reset_endpoint_counts()
                cpu_at_start = gateway.cpu_seconds() if gateway else None
                next_report = 1.0
                while locust.alive():
                    t = time.time() - t0
                    for child in stack.children:
                        if not child.alive():
                            raise EnvironmentProblem(f"{child.name} died during the run: {child.tail()}")
                    try:
                        applier.apply(timeline.active_faults(t) if t < scenario.duration else {}, t)
                    except requests.RequestException as exc:
                        raise EnvironmentProblem(f"could not apply a fault at {t:.1f}s: {exc}") from None
                    if operator is not None:
                        operator.apply(timeline.admin_steps(t) if t < scenario.duration else {}, t)
                    if t >= next_report:
                        tail.poll()
                        self._report(name, t, scenario, timeline, tail, applier)
                        self._snapshot(url, folder, t, mode is not None)
                        self._tell_gateway(url, scenario, name, timeline, t, applier, mode is not None)
                        next_report += 1.0
                    time.sleep(TICK)
            finally:
                try:
                    applier.clear_all(time.time() - t0)
                except Exception as exc:  # a dead endpoint or Toxiproxy; stack.stop() resets the rest
                    self.progress(f"[{name}] could not undo every fault here: {exc}")
                locust.stop(timeout=10)
                if gateway is not None and cpu_at_start is not None and (end := gateway.cpu_seconds()):
                    meta["gateway_cpu_seconds"] = round(end - cpu_at_start, 4)
                meta["ended"] = round(time.time() - t0, 3)
                (folder / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
                with contextlib.suppress(Exception):  # a dead endpoint process must not hide the records
                    (folder / "endpoint_counts.json").write_text(
                        json.dumps(stack.endpoint_counts(), indent=1)
                    )
                if mode is not None:
                    stack.stop_gateway()
        rows = list(csv.DictReader(records.open(encoding="utf-8"))) if records.exists() else []
        locust_summary = (
            json.loads((folder / "locust.json").read_text()) if (folder / "locust.json").exists() else {}
        )
        if not locust_summary:
            raise EnvironmentProblem(f"Locust did not finish: {locust.tail()}")
        result = VariantResult(name, folder, len(rows), int(locust_summary.get("total", -1)))
        result.summary = summarize(rows, timeline)
        return result

    def _report(
        self,
        name: str,
        t: float,
        scenario: Scenario,
        timeline: Timeline,
        tail: RecordTail,
        applier: FaultApplier,
    ) -> None:
        count, errors = tail.window(t - 1.0, t)
        active = ", ".join(sorted({f"{f.model}:{f.kind}" for f in applier.active.values()})) or "none"
        self.progress(
            f"[{name}] {timeline.phase(t):<9} {t:5.1f}/{scenario.duration:.1f}s  "
            f"rate {count:4d}/s  errors {errors / count if count else 0:6.1%}  faults: {active}"
        )

    def _start_gateway(self, stack: Stack, config: dict[str, Any], folder: Path) -> str:
        try:
            return stack.start_gateway({**config, "port": self.gateway_port}, folder, "gateway")
        except EnvironmentProblem:
            if port_is_free(self.gateway_port):
                raise
            self.gateway_port = free_port()  # someone else took the port between gateways
            return stack.start_gateway({**config, "port": self.gateway_port}, folder, "gateway")

    def _tell_gateway(
        self,
        url: str,
        scenario: Scenario,
        name: str,
        timeline: Timeline,
        t: float,
        applier: FaultApplier,
        ours: bool,
    ) -> None:
        """Our gateway's dashboard shows the run's phase and active faults; best effort."""
        if not ours:
            return
        status = {
            "scenario": scenario.name,
            "variant": name,
            "phase": timeline.phase(t),
            "elapsed": round(t, 2),
            "duration": round(scenario.duration, 2),
            "faults": [{"model": f.model, "kind": f.kind, "fault": f.index} for f in applier.active.values()],
        }
        with contextlib.suppress(requests.RequestException):
            requests.post(
                f"{url}/admin/run-status",
                json=status,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=1,
            )

    def _snapshot(self, url: str, folder: Path, t: float, ours: bool) -> None:
        if not ours:
            return
        try:
            state = requests.get(
                f"{url}/admin/state", headers={"Authorization": f"Bearer {self.token}"}, timeout=1
            )
            if state.ok:
                snapshot = state.json()
                snapshot.pop("audit", None)  # audit.jsonl has it all; keep a line a second small
                with (folder / "metrics.jsonl").open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"t": round(t, 3), **snapshot}) + "\n")
        except requests.RequestException:
            pass


def _versions(stack: Stack) -> dict[str, str]:
    """What produced the run, so a report can say it and a rerun can match it."""
    versions = {"python": platform.python_version()}
    for package in ("model-chaos-harness", "locust", "aiohttp", "pandas", "matplotlib", "toxiproxy-python"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    with contextlib.suppress(Exception):
        versions["toxiproxy-server"] = stack.toxiproxy.version()
    return versions


def _run_meta(
    scenario: Scenario,
    timeline: Timeline,
    name: str,
    mode: str | None,
    url: str,
    t0: float,
    versions: dict[str, str],
) -> dict[str, Any]:
    """Everything the reports need besides the records: t0, phases, fault windows as planned."""
    phases = scenario.phases
    models = scenario.model_names()
    windows = []
    for index, start, end in timeline.windows():
        fault = scenario.faults[index]
        kind = fault.network.type if fault.network else ("down" if fault.down else "endpoint")
        detail = fault.network.model_dump() if fault.network else fault.endpoint
        windows.append(
            {
                "fault": index,
                "start": start,
                "end": end,
                "models": fault.models(models),
                "kind": kind,
                "detail": detail,
            }
        )
    return {
        "variant": name,
        "mode": mode or "external",
        "target": url if mode is None else None,
        "t0": t0,
        "seed": scenario.seed,
        "models": models,
        "phases": {
            "warmup": phases.warmup,
            "baseline": phases.baseline,
            "faults": scenario.fault_phase,
            "recovery": phases.recovery,
        },
        "duration": scenario.duration,
        "windows": windows,
        "load": scenario.load.model_dump(),
        "plan": scenario.system_under_test.plan,
        "versions": versions,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "gateway_cpu_seconds": None,
    }


def format_summary(result: RunResult) -> str:
    lines = [f"run {result.run_id}  ->  {result.folder}"]
    header = (
        f"  {'variant':<10}{'phase':<10}{'requests':>9}{'errors':>8}{'error %':>9}{'p50 ms':>9}{'p99 ms':>9}"
    )
    lines.append(header)
    for variant in result.variants:
        for phase in ("baseline", "faults", "recovery", "all"):
            s = variant.summary.get(phase)
            if not s:
                continue
            p50 = f"{s['p50_ms']:.1f}" if s["p50_ms"] is not None else "-"
            p99 = f"{s['p99_ms']:.1f}" if s["p99_ms"] is not None else "-"
            lines.append(
                f"  {variant.name:<10}{phase:<10}{s['requests']:>9}{s['errors']:>8}"
                f"{s['error_rate']:>9.2%}{p50:>9}{p99:>9}"
            )
        lines.append(f"  {variant.name:<10}records {variant.records} / Locust total {variant.locust_total}")
    return "\n".join(lines)


def main_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
