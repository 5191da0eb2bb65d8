"""Faults as a pure function of elapsed time; the runner applies only the differences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.scenario.model import AdminStep, Fault, Scenario


@dataclass(frozen=True, slots=True)
class ActiveFault:
    """One fault on one model, identified by its index in the scenario."""

    index: int
    model: str
    kind: str
    spec: Fault

    @property
    def key(self) -> tuple[int, str]:
        return (self.index, self.model)

    @property
    def toxic_name(self) -> str:
        return f"chaos-{self.index}-{self.kind}"

    def describe(self) -> dict[str, Any]:
        return {"fault": self.index, "model": self.model, "kind": self.kind, "detail": self.spec.detail}


class Timeline:
    """When each fault is on, measured from the start of the run (warm-up included)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.offset = scenario.phases.warmup + scenario.phases.baseline
        models = scenario.model_names()
        self._faults = [(i, f, f.models(models)) for i, f in enumerate(scenario.faults)]

    def windows(self) -> list[tuple[int, float, float]]:
        """(fault index, start, end) in seconds from the run's start."""
        return [(i, self.offset + f.at, self.offset + f.at + f.for_) for i, f, _ in self._faults]

    def active_faults(self, t: float) -> dict[tuple[int, str], ActiveFault]:
        active = {}
        for index, fault, models in self._faults:
            start = self.offset + fault.at
            if start <= t < start + fault.for_:
                for model in models:
                    item = ActiveFault(index, model, fault.kind, fault)
                    active[item.key] = item
        return active

    def admin_steps(self, t: float) -> dict[int, AdminStep]:
        """Operator steps in force at `t`, by index (a step without `for` holds to the end)."""
        active = {}
        for index, step in enumerate(self.scenario.admin):
            start = self.offset + step.at
            if start <= t and (step.for_ is None or t < start + step.for_):
                active[index] = step
        return active

    def phase(self, t: float) -> str:
        phases = self.scenario.phases
        if t < phases.warmup:
            return "warmup"
        if t < self.offset:
            return "baseline"
        if t < self.offset + self.scenario.fault_phase:
            return "faults"
        return "recovery"
