"""What watches a run without touching it: the progress line, the gateway's state once a second
(metrics.jsonl), and the run's status on the gateway's dashboard.

The tick loop only applies fault differences and publishes where it is; observers run on a
thread of their own and read the latest tick about once a second, so a slow or stuck gateway
can delay a progress line, never a fault.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.gateway.admin.client import AdminClient, AdminError
from harness.run.tail import RecordTail
from harness.scenario import ActiveFault

INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Tick:
    """Where the run is: seconds since t0, the phase, the faults in force."""

    t: float
    phase: str
    faults: tuple[ActiveFault, ...]


class Observer(Protocol):
    def observe(self, tick: Tick) -> None: ...


class Observers:
    """Calls every observer with the latest tick about once a second, on its own thread.

    Usage::

        with Observers([ProgressLine(...)]) as watch:
            while running:
                watch.publish(Tick(t, phase, faults))   # one assignment, never blocks
    """

    def __init__(self, observers: Sequence[Observer], interval: float = INTERVAL) -> None:
        self.observers = list(observers)
        self.interval = interval
        self._latest: Tick | None = None
        self._seen: Tick | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-observers", daemon=True)

    def publish(self, tick: Tick) -> None:
        self._latest = tick

    def __enter__(self) -> Observers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._observe()  # the last seconds too

    def _loop(self) -> None:
        while True:
            self._observe()
            if self._stop.wait(self.interval):
                return

    def _observe(self) -> None:
        tick = self._latest
        if tick is None or tick is self._seen:
            return
        self._seen = tick
        for observer in self.observers:
            with contextlib.suppress(Exception):  # an observer never ends a run
                observer.observe(tick)


class ProgressLine:
    """`[variant] phase  t/duration  rate  errors  faults: ...`, from the records so far."""

    def __init__(self, name: str, duration: float, tail: RecordTail, emit: Callable[[str], None]) -> None:
        self.name = name
        self.duration = duration
        self.tail = tail
        self.emit = emit

    def observe(self, tick: Tick) -> None:
        self.tail.poll()
        # Answers that ended in the second before the last half second: rows reach the file when
        # their request ends, and a little later (the writer's buffer).
        count, errors = self.tail.window(tick.t - 1.5, tick.t - 0.5)
        active = ", ".join(sorted({f"{f.model}:{f.kind}" for f in tick.faults})) or "none"
        self.emit(
            f"[{self.name}] {tick.phase:<9} {tick.t:5.1f}/{self.duration:.1f}s  "
            f"rate {count:4d}/s  errors {errors / count if count else 0:6.1%}  faults: {active}"
        )


class StateSnapshots:
    """Our gateway's /admin/state once a second, appended to metrics.jsonl (audit left out:
    audit.jsonl has it all)."""

    def __init__(self, client: AdminClient, path: Path) -> None:
        self.client = client
        self.path = path

    def observe(self, tick: Tick) -> None:
        try:
            snapshot = self.client.state()
        except AdminError:
            return
        snapshot.pop("audit", None)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"t": round(tick.t, 3), **snapshot}) + "\n")


class DashboardStatus:
    """Tells our gateway's dashboard the run's phase and active faults; best effort."""

    def __init__(self, client: AdminClient, scenario: str, variant: str, duration: float) -> None:
        self.client = client
        self.scenario = scenario
        self.variant = variant
        self.duration = duration

    def observe(self, tick: Tick) -> None:
        status = {
            "scenario": self.scenario,
            "variant": self.variant,
            "phase": tick.phase,
            "elapsed": round(tick.t, 2),
            "duration": round(self.duration, 2),
            "faults": [{"model": f.model, "kind": f.kind, "fault": f.index} for f in tick.faults],
        }
        with contextlib.suppress(AdminError):
            self.client.run_status(status)


class Samples:
    """A cumulative figure sampled once a second into a JSON-lines file, with the run time of
    the sample (the reports turn them into per-second increments)."""

    def __init__(self, path: Path, key: str, read: Callable[[], object], clock: Callable[[], float]) -> None:
        self.path = path
        self.key = key
        self.read = read
        self.clock = clock

    def observe(self, tick: Tick) -> None:
        value = self.read()
        if value is None or value == {}:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"t": round(self.clock(), 3), self.key: value}) + "\n")
