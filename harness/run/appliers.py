"""Turning the timeline into actions: faults on the stack, operator steps on the gateway.

Both are a pure function of time (`Timeline.active_faults(t)`, `Timeline.admin_steps(t)`); an
applier compares what should be in force with what is, applies only the difference, and logs
each change with the time it actually took effect to timeline.jsonl.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from harness.faults import FaultSurface, kind_of
from harness.gateway.admin.client import AdminClient, AdminError
from harness.scenario import ActiveFault, AdminStep
from harness.stack.processes import EnvironmentProblem

UNDO = {"isolate": "restore", "drain": "restore", "weight": "weight", "degraded": "degraded"}


class TimelineLog:
    """timeline.jsonl: one flushed line per change, so a crash loses nothing already applied."""

    def __init__(self, handle: TextIO, t0: float, now: Callable[[], float] = time.time) -> None:
        self.handle = handle
        self.t0 = t0
        self.now = now
        """The run's clock: the wall clock, or the simulation's virtual one."""

    def write(self, action: str, planned: float, entry: dict[str, Any]) -> None:
        line = {"t": round(self.now() - self.t0, 4), "planned": round(planned, 4), "action": action, **entry}
        self.handle.write(json.dumps(line) + "\n")
        self.handle.flush()


class FaultApplier:
    """Starts and stops faults through the registry's kinds; knows no kind itself."""

    def __init__(self, surface: FaultSurface, log: TimelineLog) -> None:
        self.surface = surface
        self.log = log
        self.active: dict[tuple[int, str], ActiveFault] = {}

    def apply(self, desired: dict[tuple[int, str], ActiveFault], planned: float) -> None:
        for key in [k for k in self.active if k not in desired]:
            ended = self.active.pop(key)
            kind_of(ended).stop(self.surface, ended)
            self.log.write("stop", planned, ended.describe())
        for key, fault in desired.items():
            if key not in self.active:
                kind_of(fault).start(self.surface, fault)
                self.active[key] = fault
                self.log.write("start", planned, fault.describe())

    def clear_all(self, planned: float) -> None:
        self.apply({}, planned)


class AdminApplier:
    """Sends a scenario's operator steps to one gateway; `who` is the scenario."""

    def __init__(self, client: AdminClient, who: str, log: TimelineLog) -> None:
        self.client = client
        self.who = who
        self.log = log
        self.active: dict[int, AdminStep] = {}

    def apply(self, desired: dict[int, AdminStep], planned: float) -> None:
        for index in [i for i in self.active if i not in desired]:
            step = self.active.pop(index)
            self._send(step, undo=True)
            self._write("stop", index, step, planned)
        for index, step in desired.items():
            if index not in self.active:
                self._send(step, undo=False)
                self.active[index] = step
                self._write("start", index, step, planned)

    def _send(self, step: AdminStep, *, undo: bool) -> None:
        action = UNDO[step.action] if undo else step.action
        why = f"{'end of: ' if undo else ''}{step.reason}"
        try:
            if step.action == "degraded":
                self.client.degraded(not undo, reason=why, who=self.who)
            else:
                weight = (1.0 if undo else step.weight) if step.action == "weight" else None
                self.client.model_action(str(step.target), action, reason=why, who=self.who, weight=weight)
        except AdminError as exc:
            raise EnvironmentProblem(f"admin step {action} {step.target or ''}: {exc}") from None

    def _write(self, action: str, index: int, step: AdminStep, planned: float) -> None:
        entry = {
            "admin": index,
            "model": step.target,
            "kind": f"admin:{step.action}",
            "detail": {"reason": step.reason, "weight": step.weight},
        }
        self.log.write(action, planned, entry)
