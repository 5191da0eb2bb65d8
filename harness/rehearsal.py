"""Scripted operator interventions: a scenario's `admin:` steps sent to our gateway's admin API.

Like faults, steps are a pure function of time (`Timeline.admin_steps(t)`); this applies only the
differences, undoes a step when its `for` ends, and logs each change beside the faults in
timeline.jsonl, so a rehearsal's audit entries can be checked against what was planned.
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO
from urllib.parse import quote

import requests

from harness.processes import EnvironmentProblem
from harness.scenario import AdminStep

UNDO = {"isolate": "restore", "drain": "restore", "weight": "weight", "degraded": "degraded"}


class AdminApplier:
    """Sends steps to one gateway with the run's token; `who` is the scenario."""

    def __init__(self, url: str, token: str, who: str, log: TextIO, t0: float) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.who = who
        self.log = log
        self.t0 = t0
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
        body: dict[str, Any] = {"reason": why, "who": self.who}
        if step.action == "degraded":
            path = "/admin/degraded"
            body["enabled"] = not undo
        else:
            path = f"/admin/models/{quote(str(step.target), safe='')}/{action}"
            if step.action == "weight":
                body["weight"] = 1.0 if undo else step.weight
        try:
            response = requests.post(f"{self.url}{path}", json=body, headers=self.headers, timeout=5)
        except requests.RequestException as exc:
            raise EnvironmentProblem(f"admin step {action} {step.target or ''} failed: {exc}") from None
        if not response.ok:
            raise EnvironmentProblem(
                f"admin step {action} {step.target or ''}: {response.status_code} {response.text}"
            )

    def _write(self, action: str, index: int, step: AdminStep, planned: float) -> None:
        entry = {
            "t": round(time.time() - self.t0, 4),
            "planned": round(planned, 4),
            "action": action,
            "admin": index,
            "model": step.target,
            "kind": f"admin:{step.action}",
            "detail": {"reason": step.reason, "weight": step.weight},
        }
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()
