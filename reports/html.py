"""`report.html`: one self-contained page (plots embedded), readable in a minute.

Order: the verdict, the verdict table, the plots, then per-fault and per-phase detail, then what
produced the run. No external assets, so it opens from a CI artifact or an air-gapped laptop.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from reports.markdown import SIMULATED_NOTE, exercised_lines, fault_time, verdict_rows
from reports.slo import show

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1320px;
color:#1d2733;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e7ec}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.pass{background:#2e8b57}.fail{background:#c0392b}.skipped{background:#8a94a0}
.inconclusive{background:#c28a00}.warn{color:#c0392b;font-weight:600}
table{border-collapse:collapse;margin:6px 0 10px}
td,th{border:1px solid #dde2e8;padding:4px 9px;text-align:left}
th{background:#f3f5f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#5f6b78}figure{margin:12px 0}figure img{max-width:100%;border:1px solid #e3e7ec}
figcaption{font-size:12px;color:#5f6b78}code{background:#f3f5f8;padding:0 3px}
"""


def _badge(status: str) -> str:
    text = {"pass": "pass", "fail": "FAIL", "skipped": "skipped", "inconclusive": "inconclusive"}.get(
        status, status
    )
    return f'<span class="badge {escape(status)}">{escape(text)}</span>' if status else ""


def _verdict_table(results: dict[str, Any]) -> str:
    has_control = "control" in results["variants"]
    head = f"<tr><th>SLO</th><th>target</th><th>{escape(results['main'])}</th><th>verdict</th>"
    head += "<th>control</th><th>verdict</th>" if has_control else ""
    head += "<th>why</th></tr>"
    rows = []
    for row in verdict_rows(results):
        cells = (
            f"<td><code>{escape(row['slo'])}</code></td><td>{escape(row['target'])}</td>"
            f'<td class="num">{escape(row["measured"])}</td><td>{_badge(row["verdict"])}</td>'
        )
        if has_control:
            cells += (
                f'<td class="num">{escape(row["control_measured"])}</td>'
                f"<td>{_badge(row['control_verdict'])}</td>"
            )
        cells += f'<td class="muted">{escape(row["reason"])}</td>'
        rows.append(f"<tr>{cells}</tr>")
    return f'<table id="verdicts">{head}{"".join(rows)}</table>'


def _fault_table(results: dict[str, Any]) -> str:
    blocks = []
    for name, variant in results["variants"].items():
        if not variant["faults"]:
            continue
        rows = "".join(
            f"<tr><td>{r['fault']}</td><td>{escape(r['model'])}</td><td>{escape(r['kind'])}</td>"
            f'<td class="num">{r["start"]:.1f}-{r["end"]:.1f} s</td>'
            f"<td>{'yes' if r.get('exercised', True) else '<span class=warn>NO</span>'}</td>"
            f'<td class="muted">{escape(r.get("exercised_basis", ""))}</td>'
            f'<td class="num">{escape(fault_time(r, "time_to_detect_s", "detect_basis", "n/a"))}</td>'
            f'<td class="muted">{escape(r["detect_basis"])}</td>'
            f'<td class="num">{escape(fault_time(r, "recovery_time_s", "recovery_basis", "n/a"))}</td>'
            f'<td class="muted">{escape(r["recovery_basis"])}</td></tr>'
            for r in variant["faults"]
        )
        blocks.append(
            f"<h3>{escape(name)}</h3><table><tr><th>fault</th><th>model</th><th>kind</th><th>window</th>"
            "<th>exercised</th><th>how</th><th>time to detect</th><th>how</th>"
            f"<th>recovery time</th><th>how</th></tr>{rows}</table>"
        )
    rates = [
        (name, r) for name, variant in results["variants"].items() for r in variant.get("fault_rates", [])
    ]
    if rates:
        rows = "".join(
            f"<tr><td>{escape(name)}</td><td>{r['fault']}</td>"
            f'<td class="num">{escape(show("error_rate", r["configured"]))}</td>'
            f'<td class="num">{escape(show("error_rate", r["observed"]))}</td>'
            f'<td class="num">{r["sample"]}</td><td class="muted">{escape(r["basis"])}</td></tr>'
            for name, r in rates
        )
        blocks.append(
            "<h3>Configured vs observed fault rate</h3><table><tr><th>variant</th><th>fault</th>"
            f"<th>configured</th><th>observed</th><th>sample</th><th>how</th></tr>{rows}</table>"
        )
    return "".join(blocks) or '<p class="muted">No faults: a reference run.</p>'


def _truth_table(results: dict[str, Any]) -> str:
    """Ground truth, amplification, wasted work and the streams' contract, per variant."""
    rows = []
    for name, variant in results["variants"].items():
        slis, phases = variant["slis"], variant["phases"]
        wasted = (slis.get("wasted_tokens") or {}).get("all") or {}
        contract = slis.get("stream_contract") or {}
        amplification = [phases.get(p, {}).get("retry_amplification") for p in ("baseline", "faults")]
        cells = [
            str(slis.get("truncated_successes", 0)),
            str(slis.get("corrupted_successes", 0)),
            *("-" if a is None else f"{a:.2f}" for a in amplification),
            f"{wasted.get('wasted', 0):.0f} ({show('error_rate', wasted.get('share'))})" if wasted else "-",
            str(contract.get("streams", 0)),
            str(contract.get("inband_errors", "-")),
            str(contract.get("without_done", "-")),
            str(contract.get("stalled", "-")),
            show("ttft_p95_ms", contract.get("ttft_p95_ms")),
            show("max_gap_p99_ms", contract.get("max_gap_p99_ms")),
        ]
        rows.append(
            f"<tr><td>{escape(name)}</td>"
            + "".join(f"<td class='num'>{escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    head = (
        "<tr><th>variant</th><th>truncated successes</th><th>corrupted successes</th>"
        "<th>amplification (baseline)</th><th>amplification (faults)</th><th>wasted words</th>"
        "<th>streams</th>"
        "<th>in-band errors</th><th>complete without [DONE]</th><th>stalled (gap &ge; 1 s)</th>"
        "<th>TTFT p95</th><th>longest gap p99</th></tr>"
    )
    return f'<table id="truth">{head}{"".join(rows)}</table>'


def _phase_table(results: dict[str, Any]) -> str:
    rows = []
    for name, variant in results["variants"].items():
        for phase, s in variant["phases"].items():
            rows.append(
                f"<tr><td>{escape(name)}</td><td>{escape(phase)}</td><td class='num'>{s['requests']}</td>"
                f"<td class='num'>{s['errors']}</td>"
                f"<td class='num'>{escape(show('error_rate', s['error_rate']))}</td>"
                + "".join(
                    f"<td class='num'>{escape(show(k, s[k]))}</td>"
                    for k in ("p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms")
                )
                + f"<td class='num'>{s['degraded']}</td></tr>"
            )
    return (
        "<table><tr><th>variant</th><th>phase</th><th>requests</th><th>errors</th><th>error %</th>"
        f"<th>p50</th><th>p95</th><th>p99</th><th>TTFT p50</th><th>degraded</th></tr>{''.join(rows)}</table>"
    )


def _other_slis(results: dict[str, Any]) -> str:
    names = ("degraded_share", "time_to_detect_s", "retry_amplification", "cpu_s_per_1000", "requests")
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td class='num'>{escape(show(n, v['slis'].get(n)))}</td>" for n in names)
        + "</tr>"
        for name, v in results["variants"].items()
    )
    return f"<table><tr><th>variant</th>{head}</tr>{rows}</table>"


def render(results: dict[str, Any], figures: dict[str, tuple[str, bytes]]) -> str:
    status = "pass" if results["passed"] else "fail"
    plots = "".join(
        f'<figure id="plot-{escape(name)}"><img alt="{escape(caption)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}"><figcaption>{escape(caption)}</figcaption></figure>'
        for name, (caption, png) in figures.items()
    )
    versions = ", ".join(f"{escape(k)} {escape(str(v))}" for k, v in results.get("versions", {}).items())
    description = escape(results.get("description", "")).replace("\n", " ")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(results["scenario"])}: chaos report</title>
<style>{STYLE}</style></head><body>
<h1>{escape(results["scenario"])} {_badge(status)}</h1>
<p class="muted">{description}</p>
<p><b>Bite check</b>: {escape(results["bite"]["reason"])}. Run <code>{escape(results["run_id"])}</code>,
seed {escape(str(results.get("seed")))}.</p>
{f'<p class="warn">{escape(SIMULATED_NOTE.replace("*", ""))}</p>' if results.get("simulated") else ""}
<h2>Verdicts</h2>
{_verdict_table(results)}
{"".join(f'<p class="warn">{escape(line)}</p>' for line in exercised_lines(results))}
<h2>Ground truth, amplification and the streams' contract</h2>
<p class="muted">Each answer's content is checked against what the endpoint produced (its marker), never
against what the system under test said of it; amplification is what the endpoints received per client
request.</p>
{_truth_table(results)}
<h2>Over time</h2>
{plots}
<h2>Per fault</h2>
{_fault_table(results)}
<h2>Per phase</h2>
{_phase_table(results)}
{_other_slis(results)}
<h2>What produced this run</h2>
<p class="muted">{versions}. Machine: {escape(str(results.get("machine", {})))}.
Load: {escape(str(results.get("load", {})))}. Targets: {escape("; ".join(results["targets"]))}.</p>
</body></html>
"""
