"""One scenario in virtual time: the same files as a real run, so `reports/` judges it unchanged.

Each variant (our resilient gateway, then the passthrough control) gets a fresh simulated stack
and a fresh virtual-time loop: the gateway's routing, policies, upstream client and stream
relay, the endpoints' behaviour and the fault timeline all run in one process with no socket.
Same scenario and seed, same records, byte for byte. What it cannot give: CPU (the gateway's
work takes no virtual time), so overhead SLOs read "not simulated".
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from harness.gateway.admin.actions import LocalAdmin
from harness.gateway.app import Gateway
from harness.gateway.config import GatewayConfig
from harness.gateway.launch import GROUP, gateway_config
from harness.load.records import FIELDS
from harness.run import RunResult, VariantResult
from harness.run.appliers import AdminApplier, FaultApplier, TimelineLog
from harness.run.meta import run_meta, versions
from harness.scenario import Scenario, Timeline
from harness.sim.load import SimLoad
from harness.sim.loop import LoopTimeClock, run_virtual
from harness.sim.stack import SimStack
from reports import build

START_DELAY = 1.0
"""Virtual seconds between the gateway's start and the run's t=0 (its first health probes)."""
SIM_TOKEN = "simulated-run"
SIMULATED = -1
"""A simulated variant's Locust total: there was no Locust."""


def simulate_variant(
    scenario: Scenario,
    mode: str,
    folder: Path,
    *,
    versions_found: dict[str, str] | None = None,
) -> VariantResult:
    """Run the whole timeline against our gateway in `mode`, in virtual time; files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with _gateway_log(folder / "gateway.log"):
        return run_virtual(lambda: _variant(scenario, mode, folder, versions_found or {}))


@contextlib.contextmanager
def _gateway_log(path: Path) -> Iterator[None]:
    """The gateway's log lines go to the variant's gateway.log, as a real run's do (with the
    virtual time they happened at), not to the console."""
    logger = logging.getLogger("harness.gateway")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    before = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = before
        handler.close()


async def _variant(scenario: Scenario, mode: str, folder: Path, found: dict[str, str]) -> VariantResult:
    loop = asyncio.get_running_loop()
    clock = LoopTimeClock(loop)
    stack = SimStack(scenario.model_names(), scenario.models.latency.to_model(), scenario.seed, loop.time)
    sut = scenario.system_under_test
    raw = gateway_config(stack, mode, dict(sut.policies), folder / "audit.jsonl", sut.plan, sut.hedge_delay)
    config = GatewayConfig.model_validate({**raw, "admin_token": SIM_TOKEN})
    session = stack.session()
    gateway = Gateway(
        config,
        session=session,  # type: ignore[arg-type]
        rng=random.Random(scenario.seed),
        clock=clock,
        wall_clock=loop.time,
    )
    await gateway.start()
    name = folder.name
    timeline = Timeline(scenario)
    t0 = loop.time() + START_DELAY
    meta = run_meta(scenario, timeline, name, mode, "simulated", t0, found)
    meta["simulated"] = True
    (folder / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    load = SimLoad(gateway, scenario.load, GROUP, t0, scenario.duration, scenario.seed)
    samples: list[dict[str, Any]] = []
    with (folder / "timeline.jsonl").open("w", encoding="utf-8") as handle:
        log = TimelineLog(handle, t0, now=loop.time)
        applier = FaultApplier(stack, log)
        operator = None
        if scenario.admin and mode == "resilient":
            operator = AdminApplier(LocalAdmin(gateway, loop.time), f"scenario:{scenario.name}", log)  # type: ignore[arg-type]
        await asyncio.sleep(t0 - loop.time())
        stack.reset_endpoint_counts()
        sending = loop.create_task(load.run())
        for t in _moments(scenario, timeline):
            await asyncio.sleep(max(0.0, t0 + t - loop.time()))
            applier.apply(timeline.active_faults(t) if t < scenario.duration else {}, t)
            if operator is not None:
                operator.apply(timeline.admin_steps(t) if t < scenario.duration else {}, t)
            if t == int(t):
                samples.append({"t": round(t, 4), "bytes": stack.network.received_bytes()})
        await sending
        applier.clear_all(loop.time() - t0)
    meta["ended"] = round(loop.time() - t0, 3)
    (folder / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    _write_records(folder / "records.csv", load.records)
    (folder / "endpoint_counts.json").write_text(json.dumps(stack.endpoint_counts(), indent=1))
    _write_jsonl(folder / "answers.jsonl", stack.endpoint_answers())
    _write_jsonl(folder / "proxies.jsonl", samples)
    await gateway.stop()
    return VariantResult(name, folder, len(load.records), SIMULATED)


def _moments(scenario: Scenario, timeline: Timeline) -> list[float]:
    """When the timeline may change (every fault and step edge) and every whole second (byte
    samples), up to the end."""
    edges = {float(s) for s in range(int(scenario.duration) + 1)}
    for _, start, end in timeline.windows():
        edges.update((start, end))
    offset = timeline.offset
    for step in scenario.admin:
        edges.add(offset + step.at)
        if step.for_ is not None:
            edges.add(offset + step.at + step.for_)
    edges.add(scenario.duration)
    return sorted(t for t in edges if t <= scenario.duration)


def _write_records(path: Path, rows: list[dict[str, Any]]) -> None:
    ordered = sorted(rows, key=lambda row: (float(row["t"]), int(row.get("user", 0))))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for row in ordered:
            writer.writerow({key: row.get(key, "") for key in FIELDS})


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


class Simulator:
    """`Runner`'s counterpart in virtual time: the same run folder, judged the same way."""

    def __init__(self, out: Path, *, progress: Callable[[str], None] = print) -> None:
        self.out = out
        self.progress = progress

    def run(self, scenario: Scenario, *, control: bool = True, mode: str = "resilient") -> RunResult:
        scenario = scenario.scaled()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        run_id = f"{stamp}-{scenario.name}-sim"
        for again in range(2, 1000):  # simulations are quick: several may start in one second
            if not (self.out / run_id).exists():
                break
            run_id = f"{stamp}-{scenario.name}-sim{again}"
        folder = self.out / run_id
        folder.mkdir(parents=True, exist_ok=False)
        (folder / "scenario.yaml").write_text(
            yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True), sort_keys=False), encoding="utf-8"
        )
        found = {**versions(None), "simulation": "virtual time, no sockets"}
        modes = [(mode, mode)]
        if control and mode == "resilient":
            modes.append(("passthrough", "control"))
        done = []
        for variant_mode, name in modes:
            started = time.perf_counter()
            done.append(simulate_variant(scenario, variant_mode, folder / name, versions_found=found))
            wall = time.perf_counter() - started
            self.progress(
                f"[{name}] simulated {scenario.duration:.0f} s ({done[-1].records} requests) in {wall:.2f} s"
            )
        result = RunResult(run_id, folder, done)
        result.report = build(folder)
        for variant_result in done:
            variant_result.summary = result.report.results["variants"][variant_result.name]["phases"]
        summary = {v.name: {"records": v.records, "simulated": True, "phases": v.summary} for v in done}
        (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return result
