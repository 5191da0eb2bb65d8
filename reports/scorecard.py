"""The scorecard: systems x scenarios in one table, from run folders only, as gateway comparisons
are published (failoverbench, k6 reports). A system is a variant of a run (our gateway
`resilient`, the `control`, an `external` target) unless `labels` names it otherwise, so runs
against LiteLLM and against ours, made separately, land side by side."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any

from reports.rundata import RunDataError
from reports.slo import show

KEY_SLIS = {
    "uptime": "uptime",
    "failure_impact": "impact",
    "recovery_time_s": "recovery",
    "p99_ms{phase:faults}": "p99 in faults",
    "cpu_s_per_1000": "CPU s/1k req",
}
"""What a reader compares first (availability, harm, recovery, tail latency under faults, cost),
with the short names the table uses."""


@dataclass(frozen=True, slots=True)
class Cell:
    system: str
    scenario: str
    passed: bool
    breached: tuple[str, ...]
    figures: dict[str, float | None]
    simulated: bool
    kept_sending: bool = False
    """The system sent each faulty model its usual traffic through every fault (`kept_sending`
    in reports/sli.py, from the endpoints' counts): its recovery figure says when that model's
    answers came back, not how soon it was trusted again, and the table says so beside it."""


def cells(run_dirs: list[Path], labels: dict[str, str] | None = None) -> list[Cell]:
    """One cell per variant of every run; `labels` renames variants (`{"external": "litellm"}`)."""
    labels = labels or {}
    found = []
    for folder in run_dirs:
        path = folder / "results.json"
        if not path.exists():
            raise RunDataError(
                f"{folder}: no results.json (is it a run folder? `chaos-harness report` makes one)"
            )
        results = json.loads(path.read_text(encoding="utf-8"))
        for variant, data in results["variants"].items():
            simulated = bool(results.get("simulated"))
            system = labels.get(variant, variant)
            found.append(
                Cell(
                    system=f"{system} (simulated)" if simulated else system,
                    scenario=results["scenario"],
                    passed=bool(data["passed"]),
                    breached=_breached(data),
                    figures={sli: _figure(data, sli) for sli in KEY_SLIS},
                    simulated=simulated,
                    kept_sending=_kept_sending(data),
                )
            )
    return found


def _breached(variant: dict[str, Any]) -> tuple[str, ...]:
    """Why a variant failed, in the table's words: its breached SLOs, and faults it never met
    (a run whose faults the system under test never exercised does not pass)."""
    found = [v["sli"] for v in variant["verdicts"] if v["status"] == "fail"]
    unmet = [e for e in variant.get("exercised", []) if not e.get("exercised", True)]
    if unmet:
        found.append(f"{len(unmet)} fault(s) not exercised")
    return tuple(found)


def _kept_sending(variant: dict[str, Any]) -> bool:
    """Every fault the system met shows it: one it held the model through is an ejection, and
    a fault nobody met says nothing."""
    met = [f for f in variant.get("faults") or [] if f.get("exercised", True)]
    return bool(met) and all(f.get("kept_sending") is True for f in met)


def _figure(variant: dict[str, Any], sli: str) -> float | None:
    if sli == "p99_ms{phase:faults}":
        faults = variant["phases"].get("faults") or {}
        return faults.get("p99_ms")
    value = variant["slis"].get(sli)
    return value if isinstance(value, int | float) else None


def _grid(found: list[Cell]) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    systems = list(dict.fromkeys(c.system for c in found))
    scenarios = sorted({c.scenario for c in found})
    return systems, scenarios, {(c.system, c.scenario): c for c in found}


def _summary(cell: Cell) -> str:
    figures = ", ".join(
        f"{KEY_SLIS[name]} {_shown(cell, name, value)}"
        for name, value in cell.figures.items()
        if value is not None
    )
    verdict = "pass" if cell.passed else "FAIL (" + ", ".join(cell.breached) + ")"
    return f"{verdict}; {figures}"


def _shown(cell: Cell, name: str, value: float) -> str:
    if name == "cpu_s_per_1000":
        return f"{value:.2f}"
    text = show(name.split("{")[0], value)
    if name == "recovery_time_s" and cell.kept_sending:
        return f"{text} (never took the model out)"
    return text


def markdown(found: list[Cell]) -> str:
    systems, scenarios, grid = _grid(found)
    lines = [
        "# Scorecard",
        "",
        "| scenario | " + " | ".join(systems) + " |",
        "| --- |" + " --- |" * len(systems),
    ]
    for scenario in scenarios:
        row = [_summary(grid[(s, scenario)]) if (s, scenario) in grid else "not run" for s in systems]
        lines.append(f"| {scenario} | " + " | ".join(row) + " |")
    totals = [sum(1 for c in found if c.system == s and c.passed) for s in systems]
    runs = [sum(1 for c in found if c.system == s) for s in systems]
    lines.append(
        "| **passed** | " + " | ".join(f"**{p}/{n}**" for p, n in zip(totals, runs, strict=True)) + " |"
    )
    lines += ["", _legend(found)]
    return "\n".join(lines) + "\n"


def html(found: list[Cell]) -> str:
    systems, scenarios, grid = _grid(found)
    head = "".join(f"<th>{escape(s)}</th>" for s in systems)
    rows = []
    for scenario in scenarios:
        tds = []
        for system in systems:
            cell = grid.get((system, scenario))
            if cell is None:
                tds.append('<td class="none">not run</td>')
                continue
            css = "pass" if cell.passed else "fail"
            tds.append(f'<td class="{css}">{escape(_summary(cell))}</td>')
        rows.append(f"<tr><th>{escape(scenario)}</th>{''.join(tds)}</tr>")
    style = (
        "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.4em .6em;vertical-align:top;text-align:left}"
        "td.pass{background:#e8f5e9}td.fail{background:#ffebee}td.none{color:#888}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Scorecard</title><style>{style}</style>"
        f"</head><body><h1>Scorecard</h1><table><tr><th>scenario</th>{head}</tr>{''.join(rows)}</table>"
        f"<p>{escape(_legend(found))}</p></body></html>\n"
    )


def _legend(found: list[Cell]) -> str:
    note = (
        "Each cell: the verdict against the scenario's SLOs (breached SLOs named), then uptime, failure "
        "impact, recovery time, p99 inside fault windows and CPU seconds per 1,000 requests where measured. "
        "'Never took the model out' beside a recovery means the system sent the faulty model its usual "
        "traffic through the fault (the endpoint's counts; the passthrough control by construction): the "
        "figure says when that model's answers came back, not how soon the system trusted it again, and what "
        "the fault cost is in the uptime, impact and p99 beside it. The endpoint of a model taken down sees "
        "no attempt, so only the control is marked there."
    )
    if any(c.simulated for c in found):
        note += " Some runs were simulated (virtual time): their latencies and CPU are not real."
    return note


def write(found: list[Cell], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scorecard.md").write_text(markdown(found), encoding="utf-8")
    (out / "scorecard.html").write_text(html(found), encoding="utf-8")
    data = [{**asdict(c), "breached": list(c.breached)} for c in found]
    (out / "scorecard.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    return out / "scorecard.md", out / "scorecard.html"
