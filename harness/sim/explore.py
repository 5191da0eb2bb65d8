"""Search fault timelines for an SLO breach, in simulation; shrink it; confirm it for real.

Hypothesis draws timelines (`timelines.py`), each is simulated against our gateway and judged
by the reports, and a breach (an SLO verdict of fail, never an inconclusive one) is shrunk to
the smallest timeline that still breaches: fewest faults, shortest windows, fewest models. The
result is written as a scenario file that says what breached, simulated once more with the
control for its report and plots, and replayed on the real stack: confirmed or not reproduced.
Each breach found, the search goes on for a breach of another SLO, within the same budget.

A Hypothesis example database (`--database`) keeps the breaches found, so the next search
(in CI, say) tries them first.
"""

from __future__ import annotations

import base64
import html
import json
import multiprocessing
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from harness.run import Runner
from harness.scenario import Scenario, parse_scenario
from harness.sim.run import Simulator, simulate_variant
from harness.sim.timelines import timelines
from reports import results as judged
from reports.rundata import load_run
from reports.slo import CROSS_VARIANT

NOT_SIMULATED = CROSS_VARIANT | {"time_to_detect_s"}
"""Overheads are not simulated; detection is judged where a scenario asks for it, not here."""
ASKED_FOR_ONLY = frozenset({"fallback_latency_increase"})
"""Searched only when named (`--slo`): a stream that pauses for less than the gateway's stall
bound is waited out by design, and any such pause raises the p95 of a fault window far past
10 % (our simulated answers take milliseconds); the search finds that within seconds and
would report nothing else."""

BASE = {
    "models": {"count": 3},
    "load": {"rate": 20, "users": 2, "stream_share": 0.3},
    "phases": {"warmup": 1, "baseline": 3, "recovery": 12},
}
"""The scenario each timeline is put into, unless `--base` gives one: 20 requests/s, a third
streamed, long enough after the last fault for recovery to be judged."""


class _Breach(Exception):
    """Raised inside the Hypothesis test so it shrinks the timeline that raised it."""

    def __init__(self, scenario: Scenario, failed: list[dict[str, Any]]) -> None:
        super().__init__(", ".join(v["sli"] for v in failed))
        self.scenario = scenario
        self.failed = failed


class _OutOfTime(BaseException):
    """Raised inside the Hypothesis test when `max_seconds` ends a shrink. Not an `Exception`:
    Hypothesis lets it through at once instead of shrinking it as a second failure, and the
    smallest breach seen so far (`_size`) becomes the finding."""


@dataclass
class Finding:
    """One minimal breach: its scenario file, what breached, and what replaying it showed."""

    file: Path
    scenario: Scenario
    failed: list[dict[str, Any]]
    simulated_report: Path | None = None
    replay: str = "not replayed"
    """confirmed, not reproduced, or not replayed."""
    real_report: Path | None = None
    real_failed: list[str] = field(default_factory=list)
    shrunk: bool = True
    """False when `max_seconds` ended its shrink: the smallest seen by then, not the smallest."""

    @property
    def slis(self) -> list[str]:
        return [v["sli"] for v in self.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "breached": self.failed,
            "faults": len(self.scenario.faults),
            "shrunk": self.shrunk,
            "replay": self.replay,
            "real_breached": self.real_failed,
            "simulated_report": str(self.simulated_report) if self.simulated_report else None,
            "real_report": str(self.real_report) if self.real_report else None,
        }


@dataclass
class Exploration:
    examples: int = 0
    shrink_steps: int = 0
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    cut_short: bool = False
    """`max_seconds` passed before the budget was spent (each finding says whether its own
    shrink was cut: `Finding.shrunk`)."""


@dataclass(frozen=True, slots=True)
class Search:
    """What to search: the base scenario, the gateway's policies, the SLOs that count."""

    base: dict[str, Any]
    policies: dict[str, Any]
    slos: frozenset[str] | None = None
    """Only these SLIs count as a breach; None: every default one the simulation measures."""

    def scenario(self, timeline: dict[str, Any], name: str = "explored") -> Scenario:
        sut = {**self.base.get("system_under_test", {}), "policies": self.policies}
        data = {**self.base, "name": name, "system_under_test": sut, **timeline}
        return parse_scenario(data, "<explored timeline>").scaled()

    def breaches(self, scenario: Scenario, scratch: Path) -> list[dict[str, Any]]:
        """The failed verdicts of one simulated run of our gateway (no control: not needed)."""
        folder = Path(tempfile.mkdtemp(dir=scratch))
        try:
            (folder / "scenario.yaml").write_text(
                yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True)), encoding="utf-8"
            )
            simulate_variant(scenario, "resilient", folder / "resilient")
            verdicts = judged.compute(load_run(folder))["variants"]["resilient"]["verdicts"]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return [v for v in verdicts if v["status"] == "fail" and self.counts(v["sli"])]

    def counts(self, sli: str) -> bool:
        if self.slos is not None:
            return sli in self.slos and sli not in NOT_SIMULATED
        return sli not in NOT_SIMULATED and sli not in ASKED_FOR_ONLY


def explore(
    search: Search,
    out: Path,
    *,
    budget: int = 2000,
    seed: int = 0,
    database: Path | None = None,
    replay: bool = True,
    max_seconds: float | None = None,
    progress: Callable[[str], None] = print,
    jobs: int = 1,
) -> Exploration:
    """Search until `budget` timelines were tried (or `max_seconds` passed), in `jobs` processes
    (each its own share of the budget and its own seed); every minimal breach found is written
    to `out/breaches/`, simulated with its control and, with `replay`, run on the real stack."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    shares = [budget // jobs + (1 if i < budget % jobs else 0) for i in range(jobs)]
    counts = multiprocessing.get_context("fork").Array("l", 3 * jobs, lock=False)
    global _COUNTS  # the workers find their counters here: inherited when the pool forks
    _COUNTS = counts
    ticker = _Ticker(progress, counts, started)
    ticker.start()
    try:
        if jobs == 1:
            hunts = [_hunt(search, shares[0], seed, database, max_seconds, started, _Slot(counts, 0))]
        else:
            context = multiprocessing.get_context("fork")  # the counters are inherited, not sent
            with ProcessPoolExecutor(jobs, mp_context=context) as pool:
                futures = [
                    pool.submit(_hunt_slot, search, share, seed + 7919 * i, database, max_seconds, started, i)
                    for i, share in enumerate(shares)
                ]
                hunts = [future.result() for future in futures]
    finally:
        ticker.stop()
    found = Exploration(examples=sum(counts[0::3]), shrink_steps=sum(counts[1::3]))
    found.cut_short = max_seconds is not None and time.monotonic() - started > max_seconds
    if found.cut_short:
        progress(f"explore: stopped at --max-seconds {max_seconds:g}")
    for scenario, failed, shrunk in _distinct([breach for hunt in hunts for breach in hunt]):
        finding = _write(scenario, failed, out, len(found.findings) + 1, shrunk=shrunk)
        found.findings.append(finding)
        cut = "" if shrunk else " (its shrink cut short by --max-seconds)"
        progress(f"explore: breach {len(found.findings)}: {', '.join(finding.slis)}{cut} -> {finding.file}")
    found.seconds = time.monotonic() - started
    for finding in found.findings:
        _simulate_for_report(finding, out)
        if replay:
            _replay(finding, out, progress)
    write_summary(found, search, out, budget, seed)
    return found


Breach = tuple[Scenario, list[dict[str, Any]], bool]
"""A breach's scenario, its failed verdicts, and whether its shrink ran to its end."""


def _size(scenario: Scenario) -> tuple[int, float]:
    """How big a breach's timeline is: fewest faults first, then shortest windows."""
    return len(scenario.faults), sum(f.for_ for f in scenario.faults)


_COUNTS: Any = None
"""A worker's view of the shared counters (set by `explore` before the pool forks)."""


class _Slot:
    """One hunt's three counters in the shared array: examples, shrink steps, breaches."""

    def __init__(self, counts: Any, index: int) -> None:
        self.counts = counts
        self.base = 3 * index

    def add(self, which: int) -> None:
        self.counts[self.base + which] += 1


def _hunt_slot(
    search: Search,
    budget: int,
    seed: int,
    database: Path | None,
    max_seconds: float | None,
    started: float,
    index: int,
) -> list[Breach]:
    return _hunt(search, budget, seed, database, max_seconds, started, _Slot(_COUNTS, index))


def _hunt(
    search: Search,
    budget: int,
    seed: int,
    database: Path | None,
    max_seconds: float | None,
    started: float,
    slot: _Slot,
) -> list[Breach]:
    """Search rounds: each finds (and shrinks) a breach of an SLO no earlier round breached."""
    models = [f"model-{i}" for i in range(int(search.base.get("models", {}).get("count", 3)))]
    excluded: set[str] = set()
    found: list[Breach] = []
    scratch = Path(tempfile.mkdtemp(prefix="explore-"))
    try:
        while slot.counts[slot.base] < budget:
            left = budget - slot.counts[slot.base]
            breach = _search_once(
                search, models, excluded, left, seed, database, scratch, slot, max_seconds, started
            )
            if breach is None:
                break
            found.append(breach)
            slot.add(2)
            excluded.update(v["sli"] for v in breach[1])
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            if search.slos is not None and search.slos <= excluded:
                break  # every SLO asked about has its breach
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return found


def _distinct(breaches: list[Breach]) -> list[Breach]:
    """The smallest breach for each SLO (hunts in parallel may find the same one twice)."""
    covered: set[str] = set()
    kept = []
    for scenario, failed, shrunk in sorted(breaches, key=lambda b: (_size(b[0]), not b[2])):
        slis = {v["sli"] for v in failed}
        if not slis <= covered:
            kept.append((scenario, failed, shrunk))
            covered |= slis
    return kept


class _Ticker:
    """One progress line a second, from its own thread: timelines tried, breaches found,
    shrink steps, over every hunt."""

    def __init__(self, progress: Callable[[str], None], counts: Any, started: float) -> None:
        self.progress = progress
        self.counts = counts
        self.started = started
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="explore-progress", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        last = (-1, -1, -1)
        while not self.stopped.wait(1.0):
            now = (sum(self.counts[0::3]), sum(self.counts[1::3]), sum(self.counts[2::3]))
            if now != last:
                self.progress(self.line(*now))
                last = now

    def line(self, examples: int, shrinks: int, breaches: int) -> str:
        elapsed = time.monotonic() - self.started
        rate = examples / elapsed if elapsed else 0.0
        shrinking = f", {shrinks} shrink steps" if shrinks else ""
        return (
            f"explore: {examples} timelines tried ({rate:.1f}/s), "
            f"{breaches} breach(es) found{shrinking}, {elapsed:.0f} s"
        )

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.progress(self.line(sum(self.counts[0::3]), sum(self.counts[1::3]), sum(self.counts[2::3])))


def _search_once(
    search: Search,
    models: list[str],
    excluded: set[str],
    budget: int,
    seed: int,
    database: Path | None,
    scratch: Path,
    slot: _Slot,
    max_seconds: float | None,
    started: float,
) -> Breach | None:
    """One Hypothesis search for a breach of an SLI not in `excluded`; the shrunk one or None.
    `max_seconds` bounds the shrink too: once it has passed, the smallest breach seen is kept
    (the shrinker also runs candidates it does not adopt) and the spare faults are dropped."""
    first: list[bool] = []
    seen: list[_Breach] = []

    @settings(
        max_examples=budget,
        deadline=None,
        database=DirectoryBasedExampleDatabase(str(database)) if database is not None else None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(timelines(models))
    def probe(timeline: dict[str, Any]) -> None:
        out_of_time = max_seconds is not None and time.monotonic() - started > max_seconds
        if first:
            if out_of_time:
                raise _OutOfTime
            slot.add(1)
        else:
            if out_of_time:
                return  # the rest of the budget passes at once
            slot.add(0)
        scenario = search.scenario(timeline)
        failed = [v for v in search.breaches(scenario, scratch) if v["sli"] not in excluded]
        if failed:
            first.append(True)
            seen.append(_Breach(scenario, failed))
            raise seen[-1]

    # `hypothesis.seed` would also switch the example database off, and the database is what
    # lets the next search try known breaches first: the same seed, set where `seed` sets it.
    probe._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    try:
        probe()
    except _Breach as breach:
        return (*_without_spare_faults(search, breach.scenario, breach.failed, excluded, scratch), True)
    except _OutOfTime:
        # Also when the time ran out in the replay Hypothesis makes after a whole shrink: the
        # shrunk breach is then among those seen, and reported as cut short (it cannot tell).
        smallest = min(seen, key=lambda b: _size(b.scenario))
        return (*_without_spare_faults(search, smallest.scenario, smallest.failed, excluded, scratch), False)
    return None


def _without_spare_faults(
    search: Search, scenario: Scenario, failed: list[dict[str, Any]], excluded: set[str], scratch: Path
) -> tuple[Scenario, list[dict[str, Any]]]:
    """Drop each fault the breach does not need, one at a time, until every one left is needed.
    Hypothesis shrinks the draws the timeline was made from, not the faults themselves: after a
    change to the gateway it once returned two faults where one of them alone breached the same
    SLO, and a finding called minimal must be."""
    wanted = {v["sli"] for v in failed}
    dropped = True
    while dropped and len(scenario.faults) > 1:
        dropped = False
        for index in range(len(scenario.faults)):
            fewer = scenario.model_copy(
                update={"faults": [f for i, f in enumerate(scenario.faults) if i != index]}
            )
            still = [v for v in search.breaches(fewer, scratch) if v["sli"] not in excluded]
            if wanted & {v["sli"] for v in still}:
                scenario, failed, dropped = fewer, still, True
                break
    return scenario, failed


def _write(
    found: Scenario, failed: list[dict[str, Any]], out: Path, number: int, shrunk: bool = True
) -> Finding:
    """The minimal breach as a scenario file that says what it breached (and, when the search
    was cut short, that its timeline may not be the smallest)."""
    slis = [v["sli"] for v in failed]
    name = f"explored-{number}-{slis[0].split('{')[0].replace('_', '-')}"
    scenario = found.model_copy(update={"name": name[:64]})
    reasons = "; ".join(f"{v['sli']}: {v['reason']}" for v in failed)
    how = (
        "shrunk to a minimal timeline"
        if shrunk
        else "shrunk until --max-seconds passed, without a fault it does not need"
    )
    description = (
        f"Found by `chaos-harness explore` and {how}: it breached {reasons} "
        "in simulation. Replay it for real with `chaos-harness run` on this file."
    )
    scenario = scenario.model_copy(update={"description": description})
    folder = out / "breaches"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scenario.name}.yaml"
    data = scenario.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data = {
        "name": scenario.name,
        "description": description,
        **{k: v for k, v in data.items() if k not in ("name", "description")},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=100), encoding="utf-8")
    return Finding(path, scenario, failed, shrunk=shrunk)


def _simulate_for_report(finding: Finding, out: Path) -> None:
    result = Simulator(out / "simulated", progress=lambda line: None).run(finding.scenario)
    assert result.report is not None
    finding.simulated_report = result.report.html


def _replay(finding: Finding, out: Path, progress: Callable[[str], None]) -> None:
    """Run the breach's file on the real stack; confirmed when the same SLO fails there."""
    seconds = finding.scenario.duration
    progress(f"explore: replaying {finding.file.name} on the real stack ({seconds:.0f} s a variant)")
    result = Runner(out / "replayed", progress=lambda line: None).run(finding.scenario)
    assert result.report is not None
    verdicts = result.report.results["variants"][result.report.results["main"]]["verdicts"]
    finding.real_failed = [v["sli"] for v in verdicts if v["status"] == "fail"]
    finding.real_report = result.report.html
    finding.replay = "confirmed" if set(finding.slis) & set(finding.real_failed) else "not reproduced"
    failed = ", ".join(finding.real_failed) or "no SLO failed"
    progress(f"explore: {finding.file.name}: {finding.replay} ({failed})")


def write_summary(found: Exploration, search: Search, out: Path, budget: int, seed: int) -> None:
    """explore.json, explore.md and explore.html: every minimal breach with its verdicts and plots."""
    summary = {
        "examples": found.examples,
        "budget": budget,
        "seed": seed,
        "shrink_steps": found.shrink_steps,
        "seconds": round(found.seconds, 1),
        "cut_short": found.cut_short,
        "policies": search.policies,
        "findings": [f.to_dict() for f in found.findings],
    }
    (out / "explore.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    lines = [
        f"# Exploration: {len(found.findings)} minimal breach(es) in {found.examples} timelines",
        "",
        f"Seed {seed}, budget {budget}, {found.seconds:.0f} s, {found.shrink_steps} shrink steps"
        + (" (stopped at --max-seconds). " if found.cut_short else ". ")
        + f"Policies: `{json.dumps(search.policies) if search.policies else 'the defaults'}`.",
        "",
    ]
    for finding in found.findings:
        lines += [
            f"## {finding.scenario.name}: {finding.replay}",
            "",
            *(f"- `{v['sli']}`: {v['reason']}" for v in finding.failed),
            "",
            f"File: `{finding.file}`; simulated report: `{finding.simulated_report}`"
            + (f"; real report: `{finding.real_report}`" if finding.real_report else ""),
            "",
            "```yaml",
            finding.file.read_text(encoding="utf-8").strip(),
            "```",
            "",
        ]
    if not found.findings:
        lines.append("No timeline breached an SLO.")
    (out / "explore.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "explore.html").write_text(_page(found, lines), encoding="utf-8")


def _page(found: Exploration, lines: list[str]) -> str:
    """The summary as a page, each breach with the plots of its simulated run."""
    parts = [f"<h1>{html.escape(lines[0].lstrip('# '))}</h1><p>{html.escape(lines[2])}</p>"]
    for finding in found.findings:
        parts.append(f"<h2>{html.escape(finding.scenario.name)}: {html.escape(finding.replay)}</h2><ul>")
        parts += [
            f"<li><code>{html.escape(v['sli'])}</code>: {html.escape(v['reason'])}</li>"
            for v in finding.failed
        ]
        parts.append(f"</ul><pre>{html.escape(finding.file.read_text(encoding='utf-8'))}</pre>")
        if finding.simulated_report is not None:
            from reports.plots import PLOTS, figure  # matplotlib only when a breach is shown

            run = load_run(finding.simulated_report.parent)
            for name in ("success", "traffic"):
                title, painter = PLOTS[name]
                png = base64.b64encode(figure(run, painter, title)).decode()
                parts.append(
                    f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{png}"></figure>'
                )
            parts.append(f'<p><a href="{html.escape(str(finding.simulated_report))}">simulated report</a>')
            if finding.real_report is not None:
                parts.append(f' · <a href="{html.escape(str(finding.real_report))}">real report</a>')
            parts.append("</p>")
    if not found.findings:
        parts.append("<p>No timeline breached an SLO.</p>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "pre{background:#f4f4f4;padding:1em}img{max-width:100%}"
    )
    head = f"<meta charset='utf-8'><title>exploration</title><style>{style}</style>"
    return f"<!doctype html><html lang='en'><head>{head}</head><body>{''.join(parts)}</body></html>\n"
