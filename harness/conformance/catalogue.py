"""The conformance catalogue (`catalogue.yaml` beside this module) as frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATALOGUE = Path(__file__).with_name("catalogue.yaml")


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    kind: str
    value: float | None = None
    window: float | None = None
    advisory: bool = False
    informational: bool = False


@dataclass(frozen=True, slots=True)
class Sequence:
    count: int
    interval: float
    per_request_max_wall: float
    down_for: float


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    name: str
    primary: dict[str, Any]
    fallback: dict[str, Any]
    max_wall: float
    checks: tuple[Check, ...]
    ideal: str = "success"
    sequence: Sequence | None = None

    @property
    def model(self) -> str:
        """The primary's model name: one per case, so no case inherits another's breaker."""
        return f"fb-{self.id.lower()}"


@dataclass(frozen=True, slots=True)
class Catalogue:
    cases: tuple[Case, ...]
    profile: str
    timing: dict[str, float] = field(default_factory=dict)
    words: int = 60
    alive_limit: float = 10.0


def load(profile: str = "full", path: Path = CATALOGUE, only: tuple[str, ...] = ()) -> Catalogue:
    """The catalogue with the profile's timings filled in (`"{stall}"` -> 30.0)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    timing = {k: float(v) for k, v in raw["profiles"][profile].items()}
    cases = []
    for entry in raw["cases"]:
        if only and entry["id"] not in only:
            continue
        sequence = None
        if "sequence" in entry:
            plan = dict(entry["sequence"])
            if profile == "fast" and "fast_sequence" in entry:
                plan.update(entry["fast_sequence"])
            sequence = Sequence(
                int(plan["count"]),
                float(plan["interval"]),
                float(plan["per_request_max_wall"]),
                _fill(plan["down_for"], timing),
            )
        checks = tuple(
            Check(
                c["id"],
                c["kind"],
                c.get("value"),
                c.get("window"),
                c.get("severity") == "advisory",
                bool(c.get("informational")),
            )
            for c in entry["checks"]
        )
        cases.append(
            Case(
                entry["id"],
                entry["name"],
                {k: _fill(v, timing) for k, v in entry.get("primary", {}).items()},
                {k: _fill(v, timing) for k, v in entry.get("fallback", {}).items()},
                float(entry["max_wall"]),
                checks,
                entry.get("ideal", "success"),
                sequence,
            )
        )
    return Catalogue(tuple(cases), profile, timing, int(raw["words"]), float(raw["alive_limit"]))


def _fill(value: Any, timing: dict[str, float]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return timing[value[1:-1]]
    return value
