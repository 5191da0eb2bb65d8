"""Append-only JSON-lines audit trail of state changes and admin actions."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .events import (
    AdminAction,
    CircuitStateChanged,
    DegradedAnswerServed,
    Event,
    EventBus,
    HealthChanged,
    RestorationStepChanged,
    WeightChanged,
)

AUDITED: tuple[type[Event], ...] = (
    CircuitStateChanged,
    HealthChanged,
    WeightChanged,
    RestorationStepChanged,
    DegradedAnswerServed,
    AdminAction,
)
"""State changes and interventions; per-call decisions (retries, hedges) are metrics' business."""


def audit_record(event: Event, wall_time: float) -> dict[str, Any]:
    """The flat record written for `event`: time, model, kind, from, to, reason and the rest."""
    record: dict[str, Any] = {
        "time": wall_time,
        "at": event.at,
        "kind": event.kind,
        "model": event.model,
    }
    for key, value in event.to_dict().items():
        if key in ("kind", "at", "model"):
            continue
        if key.startswith("from_"):
            key = "from"
        elif key.startswith("to_"):
            key = "to"
        record[key] = value
    return record


class AuditTrail:
    """An event listener that appends one JSON line per audited event and flushes each line,
    so a crash loses nothing already written.

    Usage::

        trail = AuditTrail("runs/x/audit.jsonl")
        trail.attach(router.events)   # hears the audited kinds only
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kinds: tuple[type[Event], ...] = AUDITED,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.kinds = kinds
        self.wall_clock = wall_clock
        self._file: TextIO | None = self.path.open("a", encoding="utf-8", buffering=1)

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Subscribe to `bus` for this trail's kinds; returns the unsubscribe function."""
        return bus.subscribe(self, kinds=self.kinds)

    def __call__(self, event: Event) -> None:
        """Write `event` (the subscription chose its kind) as one flushed line."""
        if self._file is None:
            return
        line = json.dumps(audit_record(event, self.wall_clock()), default=str, separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_audit(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of an audit file, oldest first."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
