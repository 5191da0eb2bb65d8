"""One variant of a scenario: one system under test (our gateway in a mode, or an external URL)
driven by Locust through the whole fault timeline, its files written to its own folder."""

from __future__ import annotations

import contextlib
import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import requests

from harness.gateway.admin.client import AdminClient
from harness.gateway.launch import GROUP, gateway_config
from harness.run.appliers import AdminApplier, FaultApplier, TimelineLog
from harness.run.meta import run_meta
from harness.run.observers import (
    DashboardStatus,
    Observer,
    Observers,
    ProgressLine,
    Samples,
    StateSnapshots,
    Tick,
)
from harness.run.sut import GatewayProcess
from harness.run.tail import RecordTail
from harness.scenario import Scenario, Timeline
from harness.stack import EnvironmentProblem, Stack
from harness.stack.processes import Child, free_port, python_module, tree_cpu_seconds

TICK = 0.1
START_DELAY = 1.0
"""Seconds between launching Locust and the run's t=0, so its users are spawned by then."""
REMOTE_START_DELAY = 5.0
"""The same with workers on other machines: they connect, get the schedule, then spawn."""


@dataclass(frozen=True, slots=True)
class RemoteWorkers:
    """Load from other machines: a Locust master binds `host:port` and waits for `count`
    workers (`chaos-harness worker --master HOST:PORT` on each)."""

    count: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Variant:
    """What runs: `mode` for our gateway (`resilient`, `passthrough`), or None with `url`."""

    name: str
    mode: str | None
    url: str | None = None
    pid: int | None = None
    """An external target's process (`--target-pid`): its CPU, and its children's, is sampled
    as our gateway's is."""
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request to an external target (`--target-header`)."""


@dataclass
class VariantResult:
    name: str
    folder: Path
    records: int = 0
    locust_total: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    """Per phase (and `all`): requests, errors, error rate, percentiles, as the reports compute them."""


@dataclass
class Context:
    """What a variant needs from the run around it."""

    stack: Stack
    versions: dict[str, str]
    token: str
    workers: int
    progress: Callable[[str], None]
    start_gateway: Callable[[dict[str, Any], Path], GatewayProcess]
    remote: RemoteWorkers | None = None


def run_variant(scenario: Scenario, variant: Variant, folder: Path, run: Context) -> VariantResult:
    """Run the whole timeline against one system under test; files land in `folder`."""
    return run_together(scenario, [(variant, folder, run)])[0]


def run_together(scenario: Scenario, runs: Sequence[tuple[Variant, Path, Context]]) -> list[VariantResult]:
    """Run the timeline against several systems under test at once, each on the stack its
    context names, over the same seconds (one t0, one tick loop).

    Why at once: a system and its control measured one after the other see different seconds
    of a shared machine, and a neighbour that slows one window and not the other moves every
    sample of it alike, which no interval over the samples can see (reports.stats.DRIFT).
    Over the same seconds, whatever slows one slows both."""
    drives: list[_Drive] = []
    with contextlib.ExitStack() as cleanup:
        for variant, folder, context in runs:
            folder.mkdir(parents=True)
            drive = _Drive(scenario, variant, folder, context)
            cleanup.callback(drive.stop_gateway)
            drive.start_gateway()
            drives.append(drive)
        remote = any(context.remote is not None for _, _, context in runs)
        t0 = time.time() + (REMOTE_START_DELAY if remote else START_DELAY)
        for drive in drives:  # before t0, counting from it: at t0 the load is already sending
            drive.run.stack.reset_endpoint_counts(t0)
        for drive in drives:
            cleanup.callback(drive.finish)
            drive.launch(t0)
        while time.time() < t0:
            time.sleep(0.01)
        for drive in drives:
            drive.begin(cleanup)
        pending = list(drives)
        while pending:
            pending = [drive for drive in pending if not drive.tick()]
            if pending:
                time.sleep(TICK)
    return [drive.result() for drive in drives]


class _Drive:
    """One system under test through the timeline: its gateway (when it is ours), its Locust,
    its faults, its observers and its files. `run_together` calls the steps in order."""

    def __init__(self, scenario: Scenario, variant: Variant, folder: Path, run: Context) -> None:
        self.scenario = scenario
        self.variant = variant
        self.folder = folder
        self.run = run
        self.timeline = Timeline(scenario)
        self.gateway: GatewayProcess | None = None
        self.url = variant.url or ""
        self.locust: Child | None = None
        self.meta: dict[str, Any] = {}
        self.t0 = 0.0
        self.cpu_of: Callable[[], float | None] | None = None
        self.cpu_at_start: float | None = None
        self.handle: TextIO | None = None
        self.applier: FaultApplier | None = None
        self.operator: AdminApplier | None = None
        self.watch: Observers | None = None

    def start_gateway(self) -> None:
        if self.variant.mode is None:
            assert self.variant.url is not None
            return
        sut = self.scenario.system_under_test
        config = gateway_config(
            self.run.stack,
            self.variant.mode,
            dict(sut.policies),
            self.folder / "audit.jsonl",
            sut.plan,
            sut.hedge_delay,
        )
        self.gateway = self.run.start_gateway({**config, "admin_token": self.run.token}, self.folder)
        self.url = self.gateway.url

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()

    def launch(self, t0: float) -> None:
        """Locust started, told to begin at `t0`; run.json written in case we die."""
        scenario, variant, run, name = self.scenario, self.variant, self.run, self.variant.name
        self.t0 = t0
        if run.remote is not None:
            join = f"chaos-harness worker --master {run.remote.host}:{run.remote.port}"
            run.progress(f"[{name}] waiting for {run.remote.count} worker(s): {join}")
        self.locust = Child(
            "locust",
            python_module("harness.load", *_load_args(scenario, variant, self.url, t0, self.folder, run)),
            self.folder / "locust.log",
        )
        self.meta = run_meta(scenario, self.timeline, name, variant.mode, self.url, t0, run.versions)
        (self.folder / "run.json").write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        self.cpu_of = self.gateway.cpu_seconds if self.gateway is not None else None
        if self.cpu_of is None and variant.pid is not None:
            self.cpu_of = partial(tree_cpu_seconds, variant.pid)
        self.handle = (self.folder / "timeline.jsonl").open("w", encoding="utf-8")
        log = TimelineLog(self.handle, t0)
        self.applier = FaultApplier(run.stack, log)
        if scenario.admin and variant.mode == "resilient":
            client = AdminClient(self.url, run.token, timeout=5.0)
            self.operator = AdminApplier(client, f"scenario:{scenario.name}", log)
        elif scenario.admin:
            run.progress(f"[{name}] admin steps skipped: only our resilient gateway has controls")

    def since_t0(self) -> float:
        return time.time() - self.t0

    def begin(self, cleanup: contextlib.ExitStack) -> None:
        """At t0: the CPU reading taken, the observers started."""
        scenario, run, name = self.scenario, self.run, self.variant.name
        self.cpu_at_start = self.cpu_of() if self.cpu_of is not None else None
        observers: list[Observer] = [
            ProgressLine(name, scenario.duration, RecordTail(self.folder / "records.csv"), run.progress),
            Samples(
                self.folder / "proxies.jsonl", "bytes", run.stack.toxiproxy.received_bytes, self.since_t0
            ),
        ]
        if self.cpu_of is not None:
            observers.append(Samples(self.folder / "cpu.jsonl", "cpu_s", self.cpu_of, self.since_t0))
        if self.gateway is not None:
            client = AdminClient(self.url, run.token, timeout=1.0)
            observers += [
                StateSnapshots(client, self.folder / "metrics.jsonl"),
                DashboardStatus(client, scenario.name, name, scenario.duration),
            ]
        self.watch = cleanup.enter_context(Observers(observers))

    def tick(self) -> bool:
        """One step of the timeline; True once the load has ended normally."""
        assert self.locust is not None and self.applier is not None and self.watch is not None
        scenario, timeline = self.scenario, self.timeline
        _check_alive(self.run.stack, self.gateway, self.since_t0())
        if load_ended(self.locust, self.since_t0, scenario.duration):
            return True
        t = self.since_t0()
        try:
            self.applier.apply(timeline.active_faults(t) if t < scenario.duration else {}, t)
        except requests.RequestException as exc:
            raise EnvironmentProblem(f"could not apply a fault at {t:.1f}s: {exc}") from None
        if self.operator is not None:
            self.operator.apply(timeline.admin_steps(t) if t < scenario.duration else {}, t)
        self.watch.publish(Tick(t, timeline.phase(t), tuple(self.applier.active.values())))
        return False

    def finish(self) -> None:
        """Whatever happened: faults undone, Locust stopped, what we know written down."""
        name, run, folder, meta = self.variant.name, self.run, self.folder, self.meta
        try:
            if self.applier is not None:
                self.applier.clear_all(self.since_t0())
        except Exception as exc:  # a dead endpoint or Toxiproxy; stack.stop() resets the rest
            run.progress(f"[{name}] could not undo every fault here: {exc}")
        if self.handle is not None:
            self.handle.close()
        if self.locust is not None:
            self.locust.stop(timeout=10)
        if self.cpu_of is not None and self.cpu_at_start is not None and (end := self.cpu_of()):
            meta["gateway_cpu_seconds"] = round(end - self.cpu_at_start, 4)
        meta["ended"] = round(self.since_t0(), 3)
        (folder / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        with contextlib.suppress(Exception):  # a dead endpoint process must not hide the records
            (folder / "endpoint_counts.json").write_text(json.dumps(run.stack.endpoint_counts(), indent=1))
        with contextlib.suppress(Exception):  # what each endpoint sent: the forged-id and waste checks
            lines = [json.dumps(answer) for answer in run.stack.endpoint_answers()]
            (folder / "answers.jsonl").write_text("".join(f"{line}\n" for line in lines))

    def result(self) -> VariantResult:
        folder = self.folder
        rows = _count_rows(folder / "records.csv")
        summary_file = folder / "locust.json"
        locust_summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        if not locust_summary:
            tail = self.locust.tail() if self.locust is not None else ""
            raise EnvironmentProblem(f"Locust did not finish: {tail}")
        return VariantResult(self.variant.name, folder, rows, int(locust_summary.get("total", -1)))


def load_ended(locust: Child, since_t0: Callable[[], float], duration: float) -> bool:
    """True once Locust has ended after the timeline, its normal end; an end before it is a
    death, not judged. The clock is read after the process, so an end at the very last
    moment is never mistaken for a death (CI once failed on that race)."""
    if locust.alive():
        return False
    t = since_t0()
    if t >= duration:
        return True
    raise EnvironmentProblem(f"not judged: {locust.name} died at {t:.1f} s: {locust.tail()}")


def _check_alive(stack: Stack, gateway: GatewayProcess | None, t: float) -> None:
    """Within a tick of a process of ours dying, the run stops: what it recorded since is not
    the system under test's doing, so it is not judged (exit 2), never counted as its errors."""
    ours = [*stack.children, *([stack.toxiproxy.child] if stack.toxiproxy.child else [])]
    ours += [gateway.child] if gateway is not None else []
    for child in ours:
        if not child.alive():
            raise EnvironmentProblem(f"not judged: {child.name} died at {t:.1f} s: {child.tail()}")


def _count_rows(records: Path) -> int:
    if not records.exists():
        return 0
    with records.open(encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def _load_args(
    scenario: Scenario, variant: Variant, url: str, t0: float, folder: Path, run: Context
) -> list[str]:
    load = scenario.load
    args = [
        "--host",
        url,
        "--rate",
        str(load.rate),
        "--users",
        str(load.users),
        "--duration",
        f"{scenario.duration:.3f}",
        "--stream-share",
        str(load.stream_share),
        "--tool-share",
        str(load.tool_share),
        "--model",
        scenario.system_under_test.model if variant.mode is None else GROUP,
        "--request-timeout",
        str(load.request_timeout),
        "--seed",
        str(scenario.seed),
        "--t0",
        f"{t0:.6f}",
        "--records",
        str(folder / "records.csv"),
        "--summary",
        str(folder / "locust.json"),
    ]
    for name, value in variant.headers:
        args += ["--header", f"{name}: {value}"]
    if run.remote is not None:
        remote = run.remote
        args += ["--role", "master", "--workers", str(remote.count)]
        args += ["--master-host", remote.host, "--master-port", str(remote.port)]
    elif run.workers:
        args += ["--workers", str(run.workers), "--master-port", str(free_port())]
    return args
