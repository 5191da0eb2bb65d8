"""`summary.md` for CI job summaries, and the same verdict table as plain text for terminals."""

from __future__ import annotations

from typing import Any

from reports.slo import show

MARK = {"pass": "✅ pass", "fail": "❌ FAIL", "skipped": "⚪ skipped"}


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
                "measured": show(sli, verdict["measured"]),
                "verdict": verdict["status"],
                "reason": verdict["reason"],
                "control_measured": show(sli, other["measured"]) if other else "",
                "control_verdict": other["status"] if other else "",
            }
        )
    return rows


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
    faults = results["variants"][main_name]["faults"]
    if faults:
        lines += [
            "| fault | model | kind | time to detect | recovery time |",
            "| ---: | --- | --- | ---: | ---: |",
        ]
        for row in faults:
            lines.append(
                f"| {row['fault']} | {row['model']} | {row['kind']} | "
                f"{show('time_to_detect_s', row['time_to_detect_s'])} | "
                f"{show('recovery_time_s', row['recovery_time_s'])} |"
            )
        lines.append("")
    if report_path:
        lines += [f"Report: `{report_path}`", ""]
    return "\n".join(lines)


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
