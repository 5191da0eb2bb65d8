"""`summary.md` for CI job summaries, and the same verdict table as plain text for terminals."""

from __future__ import annotations

from typing import Any

from reports.slo import show

MARK = {"pass": "✅ pass", "fail": "❌ FAIL", "inconclusive": "🟡 inconclusive", "skipped": "⚪ skipped"}


def verdict_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per SLO: target, then measured and verdict for the main variant and the control."""
    main = results["variants"][results["main"]]
    control = results["variants"].get("control")
    by_sli = {v["sli"]: v for v in control["verdicts"]} if control else {}
    rows = []
    for verdict in main["verdicts"]:
        other = by_sli.get(verdict["sli"])
        sli = verdict["sli"].split("{")[0]
        rows.append(
            {
                "slo": verdict["sli"],
                "target": verdict["target"],
                "measured": show(sli, verdict["measured"]) + _interval(sli, verdict.get("interval")),
                "verdict": verdict["status"],
                "reason": verdict["reason"],
                "control_measured": show(sli, other["measured"]) if other else "",
                "control_verdict": other["status"] if other else "",
            }
        )
    return rows


def _interval(sli: str, interval: list[float | None] | None) -> str:
    if not interval:
        return ""
    low = "unbounded" if interval[0] is None else show(sli, interval[0])
    high = "unbounded" if interval[1] is None else show(sli, interval[1])
    return f" [{low}, {high}]"


def headline(results: dict[str, Any]) -> str:
    state = "PASS" if results["passed"] else "FAIL"
    return f"{results['scenario']}: {state} ({results['main']}; {results['bite']['reason']})"


def render(results: dict[str, Any], report_path: str | None = None) -> str:
    main_name = results["main"]
    has_control = "control" in results["variants"]
    lines = [f"### {'✅' if results['passed'] else '❌'} {results['scenario']}", ""]
    if results["description"]:
        lines += [results["description"].splitlines()[0], ""]
    header = f"| SLO | target | {main_name} | verdict |"
    rule = "| --- | --- | ---: | --- |"
    if has_control:
        header += " control | control verdict |"
        rule += " ---: | --- |"
    lines += [header, rule]
    for row in verdict_rows(results):
        line = f"| `{row['slo']}` | {row['target']} | {row['measured']} | {MARK[row['verdict']]} |"
        if has_control:
            line += f" {row['control_measured']} | {MARK.get(row['control_verdict'], '')} |"
        lines.append(line)
    lines += ["", f"**Bite check**: {results['bite']['reason']}.", ""]
    lines += [f"**{line}**" for line in exercised_lines(results)]
    faults = results["variants"][main_name]["faults"]
    if faults:
        lines += [
            "",
            "| fault | model | kind | exercised | time to detect | recovery time |",
            "| ---: | --- | --- | --- | ---: | ---: |",
        ]
        for row in faults:
            met = "yes" if row.get("exercised", True) else "NO"
            detect = fault_time(row, "time_to_detect_s", "detect_basis")
            recover = fault_time(row, "recovery_time_s", "recovery_basis")
            lines.append(
                f"| {row['fault']} | {row['model']} | {row['kind']} | {met} | {detect} | {recover} |"
            )
        lines.append("")
    lines += [honesty_line(results), ""]
    if results.get("simulated"):
        lines += [SIMULATED_NOTE, ""]
    if report_path:
        lines += [f"Report: [{report_path}]({report_path.replace(' ', '%20')})", ""]
    return "\n".join(lines)


def fault_time(row: dict[str, Any], key: str, basis: str, not_met: str = "n/a (not exercised)") -> str:
    return not_met if row.get(basis, "").startswith("n/a") else show(key, row[key])


def exercised_lines(results: dict[str, Any]) -> list[str]:
    """In words: which faults the system under test met, and which it never did."""
    faults = results.get("exercised", [])
    if not faults:
        return []
    missed = [f for f in faults if not f["exercised"]]
    if not missed:
        return [f"Every fault was exercised: the system under test met all {len(faults)}."]
    return [
        f"Fault {f['fault']} ({f['kind']} on {', '.join(f['models'])}) was NOT exercised: {f['basis']}; "
        "it tested nothing, so the run does not pass."
        for f in missed
    ]


SIMULATED_NOTE = (
    "*Simulated run*: the gateway's routing, policies, upstream client and stream relay ran in "
    "virtual time against the endpoints' behaviour and simulated toxics, with no socket; CPU and "
    "latency overheads are not simulated. Confirm a finding on the real stack (`chaos-harness run`)."
)


def honesty_line(results: dict[str, Any]) -> str:
    """Ground truth, amplification and waste in one line: figures no system under test can claim."""
    slis = results["variants"][results["main"]]["slis"]
    phases = results["variants"][results["main"]]["phases"]
    wasted = (slis.get("wasted_tokens") or {}).get("all") or {}
    amplification = {p: phases.get(p, {}).get("retry_amplification") for p in ("baseline", "faults")}
    amp = ", ".join(f"{p} {v:.2f}" for p, v in amplification.items() if v is not None) or "-"
    share = wasted.get("share")
    waste = f"{wasted.get('wasted', 0):.0f} words ({share:.1%})" if share is not None else "-"
    return (
        f"Checked against the endpoints' own record: {slis.get('truncated_successes', 0)} truncated and "
        f"{slis.get('corrupted_successes', 0)} corrupted answers presented as successes; "
        f"retry amplification {amp}; wasted work {waste}."
    )


def render_suite(all_results: list[dict[str, Any]], reports: list[str] | None = None) -> str:
    """One job summary for several scenarios: an overview line each, then each table."""
    passed = sum(1 for r in all_results if r["passed"])
    lines = [f"## Chaos gate: {passed}/{len(all_results)} scenarios passed", ""]
    lines += [f"- {'✅' if r['passed'] else '❌'} {headline(r)}" for r in all_results]
    lines.append("")
    for index, results in enumerate(all_results):
        lines.append(render(results, reports[index] if reports else None))
    return "\n".join(lines)


def text_table(results: dict[str, Any]) -> str:
    """The verdict table for a terminal: fixed-width columns, no markup."""
    has_control = "control" in results["variants"]
    header = f"  {'SLO':<32}{'target':<12}{results['main']:>12}  {'verdict':<8}"
    if has_control:
        header += f"{'control':>12}  {'verdict':<8}"
    lines = [header]
    for row in verdict_rows(results):
        line = f"  {row['slo']:<32}{row['target']:<12}{row['measured']:>12}  {row['verdict']:<8}"
        if has_control:
            line += f"{row['control_measured']:>12}  {row['control_verdict']:<8}"
        lines.append(line)
    lines.append(f"  bite check: {results['bite']['reason']}")
    lines.append(f"  => {'PASS' if results['passed'] else 'FAIL'}")
    return "\n".join(lines)


def format_phases(results: dict[str, Any]) -> str:
    """Per variant and phase: requests, errors, error rate, p50 and p99, for a terminal. The
    same figures (and percentile definition) as results.json and the report."""
    lines = [
        f"  {'variant':<10}{'phase':<10}{'requests':>9}{'errors':>8}{'error %':>9}{'p50 ms':>9}{'p99 ms':>9}"
    ]
    for name, variant in results["variants"].items():
        for phase in ("baseline", "faults", "recovery", "all"):
            s = variant["phases"].get(phase)
            if not s:
                continue
            rate = s["error_rate"] if s["error_rate"] is not None else 0.0
            p50, p99 = (show(k, s[k]).removesuffix(" ms") for k in ("p50_ms", "p99_ms"))
            lines.append(
                f"  {name:<10}{phase:<10}{s['requests']:>9}{s['errors']:>8}{rate:>9.2%}{p50:>9}{p99:>9}"
            )
    return "\n".join(lines)
