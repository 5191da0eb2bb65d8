"""run.json: everything the reports need besides the records (t0, phases, fault windows as
planned, load, versions), written when a variant starts and again when it ends."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from typing import Any

from harness.scenario import Scenario, Timeline
from harness.stack import Stack

PACKAGES = ("model-chaos-harness", "locust", "aiohttp", "pandas", "matplotlib", "toxiproxy-python")


def versions(stack: Stack | None) -> dict[str, str]:
    """What produced the run, so a report can say it and a rerun can match it (no stack: a
    simulated run, with no Toxiproxy)."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    if stack is not None:
        with contextlib.suppress(Exception):
            found["toxiproxy-server"] = stack.toxiproxy.version()
    return found


def run_meta(
    scenario: Scenario,
    timeline: Timeline,
    name: str,
    mode: str | None,
    url: str,
    t0: float,
    found_versions: dict[str, str],
) -> dict[str, Any]:
    """The variant's run.json as it starts (the gateway's CPU and the end are added at the end)."""
    phases = scenario.phases
    models = scenario.model_names()
    windows = [
        {
            "fault": index,
            "start": start,
            "end": end,
            "models": scenario.faults[index].models(models),
            "kind": scenario.faults[index].kind,
            "detail": scenario.faults[index].detail,
        }
        for index, start, end in timeline.windows()
    ]
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
        "versions": found_versions,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "gateway_cpu_seconds": None,
    }
