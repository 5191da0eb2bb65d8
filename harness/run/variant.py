"""One variant of a scenario: one system under test (our gateway in a mode, or an external URL)
driven by Locust through the whole fault timeline, its files written to its own folder."""

from __future__ import annotations

import contextlib
import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

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
    folder.mkdir(parents=True)
    timeline = Timeline(scenario)
    gateway: GatewayProcess | None = None
    if variant.mode is not None:
        sut = scenario.system_under_test
        config = gateway_config(
            run.stack, variant.mode, dict(sut.policies), folder / "audit.jsonl", sut.plan, sut.hedge_delay
        )
        gateway = run.start_gateway({**config, "admin_token": run.token}, folder)
        url = gateway.url
    else:
        assert variant.url is not None
        url = variant.url
    try:
        return _drive(scenario, variant, folder, run, timeline, url, gateway)
    finally:
        if gateway is not None:
            gateway.stop()


def _drive(
    scenario: Scenario,
    variant: Variant,
    folder: Path,
    run: Context,
    timeline: Timeline,
    url: str,
    gateway: GatewayProcess | None,
) -> VariantResult:
    name = variant.name
    records = folder / "records.csv"
    t0 = time.time() + (START_DELAY if run.remote is None else REMOTE_START_DELAY)
    if run.remote is not None:
        join = f"chaos-harness worker --master {run.remote.host}:{run.remote.port}"
        run.progress(f"[{name}] waiting for {run.remote.count} worker(s): {join}")
    locust = Child(
        "locust",
        python_module("harness.load", *_load_args(scenario, variant, url, t0, folder, run)),
        folder / "locust.log",
    )
    meta = run_meta(scenario, timeline, name, variant.mode, url, t0, run.versions)
    (folder / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")  # in case we die
    since_t0 = lambda: time.time() - t0  # noqa: E731
    observers: list[Observer] = [
        ProgressLine(name, scenario.duration, RecordTail(records), run.progress),
        Samples(folder / "proxies.jsonl", "bytes", run.stack.toxiproxy.received_bytes, since_t0),
    ]
    cpu_of = gateway.cpu_seconds if gateway is not None else None
    if cpu_of is None and variant.pid is not None:
        cpu_of = partial(tree_cpu_seconds, variant.pid)
    if cpu_of is not None:
        observers.append(Samples(folder / "cpu.jsonl", "cpu_s", cpu_of, since_t0))
    client = AdminClient(url, run.token, timeout=1.0) if gateway is not None else None
    if client is not None:
        observers += [
            StateSnapshots(client, folder / "metrics.jsonl"),
            DashboardStatus(client, scenario.name, name, scenario.duration),
        ]
    cpu_at_start: float | None = None
    with (folder / "timeline.jsonl").open("w", encoding="utf-8") as handle:
        log = TimelineLog(handle, t0)
        applier = FaultApplier(run.stack, log)
        operator = None
        if scenario.admin and variant.mode == "resilient":
            operator = AdminApplier(
                AdminClient(url, run.token, timeout=5.0), f"scenario:{scenario.name}", log
            )
        elif scenario.admin:
            run.progress(f"[{name}] admin steps skipped: only our resilient gateway has controls")
        try:
            while time.time() < t0:
                time.sleep(0.01)
            run.stack.reset_endpoint_counts()
            cpu_at_start = cpu_of() if cpu_of is not None else None
            with Observers(observers) as watch:
                while True:
                    _check_alive(run.stack, gateway, since_t0())
                    if load_ended(locust, since_t0, scenario.duration):
                        break
                    t = since_t0()
                    try:
                        applier.apply(timeline.active_faults(t) if t < scenario.duration else {}, t)
                    except requests.RequestException as exc:
                        raise EnvironmentProblem(f"could not apply a fault at {t:.1f}s: {exc}") from None
                    if operator is not None:
                        operator.apply(timeline.admin_steps(t) if t < scenario.duration else {}, t)
                    watch.publish(Tick(t, timeline.phase(t), tuple(applier.active.values())))
                    time.sleep(TICK)
        finally:
            try:
                applier.clear_all(time.time() - t0)
            except Exception as exc:  # a dead endpoint or Toxiproxy; stack.stop() resets the rest
                run.progress(f"[{name}] could not undo every fault here: {exc}")
            locust.stop(timeout=10)
            if cpu_of is not None and cpu_at_start is not None and (end := cpu_of()):
                meta["gateway_cpu_seconds"] = round(end - cpu_at_start, 4)
            meta["ended"] = round(time.time() - t0, 3)
            (folder / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            with contextlib.suppress(Exception):  # a dead endpoint process must not hide the records
                (folder / "endpoint_counts.json").write_text(
                    json.dumps(run.stack.endpoint_counts(), indent=1)
                )
            with contextlib.suppress(Exception):  # what each endpoint sent: the forged-id and waste checks
                lines = [json.dumps(answer) for answer in run.stack.endpoint_answers()]
                (folder / "answers.jsonl").write_text("".join(f"{line}\n" for line in lines))
    rows = _count_rows(records)
    locust_summary = (
        json.loads((folder / "locust.json").read_text()) if (folder / "locust.json").exists() else {}
    )
    if not locust_summary:
        raise EnvironmentProblem(f"Locust did not finish: {locust.tail()}")
    return VariantResult(name, folder, rows, int(locust_summary.get("total", -1)))


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
    if run.remote is not None:
        remote = run.remote
        args += ["--role", "master", "--workers", str(remote.count)]
        args += ["--master-host", remote.host, "--master-port", str(remote.port)]
    elif run.workers:
        args += ["--workers", str(run.workers), "--master-port", str(free_port())]
    return args
