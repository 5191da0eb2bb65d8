"""A short, deterministic tour of the resilience core, printed as a table.

It runs in virtual time (FakeClock), so it takes well under a second yet shows realistic
timings: a primary model that goes dark, the breaker opening, fallback, progressive
restoration and a manual isolate, all recorded in an audit trail.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections import Counter
from pathlib import Path

from resilience_core import (
    AdminControls,
    AuditTrail,
    CircuitBreakerConfig,
    ModelCallError,
    ModelRouter,
    ModelSpec,
    RestorationConfig,
    RouterConfig,
    StaticAnswer,
    read_audit,
)
from resilience_core.testing import FakeClock

PHASES = (
    ("healthy", 0.0, 20.0),
    ("primary down", 20.0, 40.0),
    ("primary back", 40.0, 90.0),
    ("both down", 90.0, 100.0),
    ("primary isolated", 100.0, 120.0),
)
RATE = 20.0
"""Requests per virtual second."""


class SimulatedModel:
    """A model whose latency is fixed and which fails while `down` is set."""

    def __init__(self, name: str, latency: float, clock: FakeClock) -> None:
        self.name = name
        self.latency = latency
        self.clock = clock
        self.down = False

    async def __call__(self, request: object) -> str:
        await self.clock.sleep(self.latency)
        if self.down:
            raise ModelCallError(f"{self.name} unavailable", status=503)
        return f"answer from {self.name}"


async def _drive(clock: FakeClock, audit_path: Path) -> list[tuple[str, int, Counter[str], int]]:
    primary = SimulatedModel("primary", 0.20, clock)
    backup = SimulatedModel("backup", 0.35, clock)
    config = RouterConfig(
        deadline=5.0,
        breaker=CircuitBreakerConfig(consecutive_failures=3, wait_duration=5.0, half_open_probes=2),
        restoration=RestorationConfig(steps=(0.1, 0.25, 0.5, 1.0), hold=5.0),
        degraded=StaticAnswer("Our assistant is busy; here is a cached answer."),
    )
    router = ModelRouter(
        [
            ModelSpec("primary", primary, timeout=2.0),
            ModelSpec("backup", backup, priority=1, timeout=2.0),
        ],
        config,
        clock=clock,
        rng=random.Random(7),
    )
    trail = AuditTrail(audit_path, wall_clock=clock.now)
    trail.attach(router.events)
    admin = AdminControls(router)
    rows = []
    tasks: list[asyncio.Task[object]] = []
    for name, start, end in PHASES:
        primary.down = name in ("primary down", "both down")
        backup.down = name == "both down"
        if name == "primary isolated":
            admin.restore("backup", who="demo", why="backup fixed")
            admin.isolate("primary", who="demo", why="rehearsing a provider incident")
        served: Counter[str] = Counter()
        errors = 0
        t = start
        while t < end:
            await clock.sleep(max(0.0, t - clock.now()))
            tasks.append(asyncio.ensure_future(router.execute({"prompt": f"q{t}"})))
            t += 1.0 / RATE
        results = await asyncio.gather(*tasks)
        tasks.clear()
        for outcome in results:
            if outcome.error is not None:
                errors += 1
            else:
                served["degraded" if outcome.degraded else outcome.model] += 1
        rows.append((name, len(results), served, errors))
    trail.close()
    return rows


def run_demo() -> int:
    """Print the tour's table and the audit trail it produced."""
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as folder:
        audit_path = Path(folder) / "audit.jsonl"
        rows = asyncio.run(clock.run(_drive(clock, audit_path)))
        audit = read_audit(audit_path)
    print("resilience_core demo: two models, 20 requests/s, in virtual time\n")
    header = f"{'phase':<18}{'requests':>9}{'primary':>9}{'backup':>8}{'degraded':>10}{'errors':>8}"
    print(header)
    print("-" * len(header))
    for name, total, served, errors in rows:
        print(
            f"{name:<18}{total:>9}{served['primary']:>9}{served['backup']:>8}"
            f"{served['degraded']:>10}{errors:>8}"
        )
    print(f"\naudit trail ({len(audit)} entries):")
    for entry in audit:
        if entry["kind"] == "DegradedAnswerServed":
            continue
        origin = entry.get("from", "")
        target = entry.get("to", entry.get("action", ""))
        reason = entry.get("reason", entry.get("why", ""))
        where = f"t={entry['at']:7.2f}s  {entry['model']:<8} {entry['kind']:<22}"
        print(f"  {where} {origin!s:>9} -> {target!s:<10} {reason}")
    degraded = sum(1 for e in audit if e["kind"] == "DegradedAnswerServed")
    print(f"  (+ {degraded} DegradedAnswerServed entries)")
    return 0
