"""Service level indicators from one variant's records, endpoint counts and audit trail.

Every function is pure (tables in, numbers out) so the verdicts can be tested on hand-built and
generated records with known answers. Definitions follow DESIGN.md's SLI table; where a choice
had to be made it is written in the docstring.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from reports.rundata import PHASES, FaultWindow, PhasePlan, VariantData

RECOVERED_SHARE = 0.9
"""Recovered = the model again gets >= 90 % of its baseline share of successful answers."""
DETECTED_SHARE = 0.1
"""Detected (endpoint side) = the model gets < 10 % of its baseline share of what was sent."""
OPENED = ("open", "isolated")
ENDPOINT_SIDE_DETECTABLE = ("endpoint", "latency", "bandwidth", "slicer", "slow_close", "limit_data")
"""Faults the endpoint still sees traffic through, so a drop in what it receives means ejection."""


def percentile(values: pd.Series | np.ndarray, q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation), None for no values."""
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    return float(np.percentile(array, q)) if array.size else None


def between(records: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    return records[(records["t"] >= start) & (records["t"] < end)]


def merged(windows: list[FaultWindow]) -> list[tuple[float, float]]:
    """The fault windows as disjoint intervals (overlapping faults count once)."""
    spans: list[tuple[float, float]] = []
    for start, end in sorted((w.start, w.end) for w in windows):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def in_faults(records: pd.DataFrame, windows: list[FaultWindow]) -> pd.DataFrame:
    mask = pd.Series(False, index=records.index)
    for start, end in merged(windows):
        mask |= (records["t"] >= start) & (records["t"] < end)
    return records[mask]


def errors(records: pd.DataFrame) -> int:
    return int((~records["ok"]).sum())


def successes(records: pd.DataFrame) -> pd.DataFrame:
    """Answers that really came from a model: ok and not a degraded stand-in."""
    return records[records["ok"] & ~records["degraded"]]


def latency_stats(records: pd.DataFrame, seconds: float) -> dict[str, Any]:
    """Counts, rates and latency percentiles of a slice of records lasting `seconds`."""
    ok = records[records["ok"]]
    served = successes(records)
    return {
        "requests": len(records),
        "errors": errors(records),
        "error_rate": errors(records) / len(records) if len(records) else None,
        "degraded": int(records["degraded"].sum()),
        "p50_ms": percentile(ok["latency_ms"], 50),
        "p95_ms": percentile(ok["latency_ms"], 95),
        "p99_ms": percentile(ok["latency_ms"], 99),
        "ttft_p50_ms": percentile(ok["ttft_ms"], 50) if "ttft_ms" in ok else None,
        "ttft_p95_ms": percentile(ok["ttft_ms"], 95) if "ttft_ms" in ok else None,
        "rps": len(records) / seconds if seconds > 0 else None,
        "success_rps": len(served) / seconds if seconds > 0 else None,
    }


def phase_stats(records: pd.DataFrame, plan: PhasePlan) -> dict[str, dict[str, Any]]:
    """Per phase (and `all` = everything after warm-up): counts, rates, latency percentiles."""
    stats = {}
    for phase in PHASES:
        start, end = plan.bounds(phase)
        if end > start:
            stats[phase] = latency_stats(between(records, start, end), end - start)
    stats["all"] = latency_stats(between(records, plan.warmup, math.inf), plan.end - plan.warmup)
    return stats


def uptime(records: pd.DataFrame, plan: PhasePlan) -> tuple[float | None, float | None]:
    """(uptime, degraded share) after warm-up; degraded answers count as up."""
    after = between(records, plan.warmup, math.inf)
    if after.empty:
        return None, None
    return float(after["ok"].mean()), float(after["degraded"].mean())


def failure_impact(records: pd.DataFrame, windows: list[FaultWindow]) -> float | None:
    """Error responses / requests started inside any fault window."""
    inside = in_faults(records, windows)
    return errors(inside) / len(inside) if len(inside) else None


def fallback_latency_increase(
    records: pd.DataFrame, plan: PhasePlan, windows: list[FaultWindow]
) -> float | None:
    """p95 of successful answers in fault windows / p95 in the baseline - 1."""
    base = percentile(between(records, *plan.bounds("baseline")).query("ok")["latency_ms"], 95)
    faulted = percentile(in_faults(records, windows).query("ok")["latency_ms"], 95)
    if not base or faulted is None:
        return None
    return faulted / base - 1


def degraded_capacity(records: pd.DataFrame, plan: PhasePlan, windows: list[FaultWindow]) -> float | None:
    """Successful (non-degraded) answers per second in fault windows / the same in the baseline."""
    base_start, base_end = plan.bounds("baseline")
    base_rate = len(successes(between(records, base_start, base_end))) / (base_end - base_start)
    fault_seconds = sum(end - start for start, end in merged(windows))
    if not base_rate or not fault_seconds:
        return None
    return len(successes(in_faults(records, windows))) / fault_seconds / base_rate


def retry_amplification(records: pd.DataFrame, plan: PhasePlan) -> float | None:
    """Upstream attempts per client request, as the system under test reports them (x-attempts)."""
    attempts = between(records, plan.warmup, math.inf)["attempts"].dropna()
    return float(attempts.mean()) if len(attempts) else None


def truncated_successes(records: pd.DataFrame) -> int:
    """Answers the client took as complete (200, ok, [DONE]) that never said how they finished.

    Every simulated answer ends with a finish_reason; one missing means a cut answer was
    presented as whole, which no SLO may excuse.
    """
    if "finish_reason" not in records:
        return 0
    suspicious = records["ok"] & ~records["degraded"] & (records["finish_reason"].fillna("") == "")
    return int(suspicious.sum())


def per_second_shares(counts: pd.DataFrame, outcome: str | None) -> pd.DataFrame:
    """Seconds x models: each model's share of `outcome` answers (all received if None)."""
    if counts.empty:
        return pd.DataFrame()
    if outcome is None:
        per_model = counts.T.groupby(level="model").sum().T
    else:
        per_model = (
            counts.xs(outcome, axis=1, level="outcome") if outcome in counts.columns.levels[1] else None
        )
        if per_model is None:
            return pd.DataFrame()
    total = per_model.sum(axis=1)
    return per_model.div(total.replace(0, np.nan), axis=0)


def baseline_shares(counts: pd.DataFrame, plan: PhasePlan, outcome: str | None) -> pd.Series:
    """Each model's share over the whole baseline (whole seconds inside it)."""
    if counts.empty:
        return pd.Series(dtype=float)
    first, last = math.ceil(plan.warmup), math.floor(plan.baseline_end) - 1
    window = counts.loc[(counts.index >= first) & (counts.index <= last)]
    if outcome is None:
        per_model = window.T.groupby(level="model").sum().T.sum()
    elif outcome in counts.columns.levels[1]:
        per_model = window.xs(outcome, axis=1, level="outcome").sum()
    else:
        return pd.Series(dtype=float)
    total = per_model.sum()
    return per_model / total if total else per_model * 0.0


def recovery_time(
    counts: pd.DataFrame, plan: PhasePlan, window: FaultWindow, model: str, horizon: float
) -> tuple[float | None, str]:
    """Seconds from the fault's end until the model gets >= 90 % of its baseline share again.

    Endpoint-side counts of successful answers in 1 s windows, starting with the second the
    fault ends in, so the answer is exact to the window resolution. A model with no baseline
    share has nothing to recover (0). None when it never recovered before the run ended.
    """
    base = baseline_shares(counts, plan, "ok")
    expected = float(base.get(model, 0.0))
    if expected <= 0:
        return 0.0, "no baseline share to restore"
    shares = per_second_shares(counts, "ok")
    for second in range(math.floor(window.end), math.ceil(horizon)):
        if second in shares.index and model in shares.columns:
            share = shares.at[second, model]
            if not np.isnan(share) and share >= RECOVERED_SHARE * expected:
                return max(0.0, second - window.end), "endpoint counts"
    return None, "did not get its share back before the run ended"


def time_to_detect(variant: VariantData, window: FaultWindow, model: str) -> tuple[float | None, str]:
    """Seconds from fault start until the system under test stopped sending the model traffic.

    From the audit trail (breaker open or isolated) when the system under test keeps one; else
    from endpoint counts for faults the endpoint still sees traffic through. None = never.
    """
    t0 = float(variant.meta["t0"])
    opened = [
        float(entry["time"]) - t0
        for entry in variant.audit
        if entry.get("kind") == "CircuitStateChanged"
        and entry.get("to") in OPENED
        and _same_model(str(entry.get("model", "")), model)
    ]
    after = [t for t in opened if window.start - 0.05 <= t < window.end]
    if after:
        return max(0.0, min(after) - window.start), "audit trail"
    if variant.audit or variant.mode == "passthrough":
        return None, "never ejected during the fault"
    if window.kind not in ENDPOINT_SIDE_DETECTABLE:
        return None, f"not measurable from endpoint counts for a {window.kind} fault"
    base = baseline_shares(variant.endpoint_counts, variant.plan, None)
    expected = float(base.get(model, 0.0))
    shares = per_second_shares(variant.endpoint_counts, None)
    if expected <= 0 or shares.empty:
        return None, "no baseline traffic to see it drop"
    for second in range(math.floor(window.start), math.ceil(window.end)):
        if second in shares.index and model in shares.columns:
            share = shares.at[second, model]
            if not np.isnan(share) and share < DETECTED_SHARE * expected:
                return max(0.0, second - window.start), "endpoint counts"
    return None, "never ejected during the fault"


def _same_model(label: str, model: str) -> bool:
    """Audit labels are `provider/model`; endpoint counts use the model name."""
    return label == model or label.endswith(f"/{model}")


def observed_fault_rate(variant: VariantData, window: FaultWindow) -> dict[str, Any] | None:
    """Configured vs observed per-request fault rate, where a rate applies.

    Endpoint error rates from the endpoint's own counts; a latency toxic's toxicity from the
    share of the model's answers slower than the baseline p99 plus half the added latency.
    """
    detail = window.detail or {}
    if window.kind == "endpoint" and "error_rate" in detail and detail.get("status"):
        counts = variant.endpoint_counts
        if counts.empty:
            return None
        seconds = (counts.index >= math.ceil(window.start)) & (counts.index < math.floor(window.end))
        hit = received = 0
        for model in window.models:
            if model in counts.columns.get_level_values("model"):
                block = counts.loc[seconds, model]
                received += int(block.to_numpy().sum())
                column = f"status_{detail['status']}"
                hit += int(block[column].sum()) if column in block else 0
        return {
            "fault": window.index,
            "configured": float(detail["error_rate"]),
            "observed": hit / received if received else None,
            "sample": received,
            "basis": "endpoint counts",
        }
    if window.kind == "latency" and detail.get("toxicity", 1.0) < 1.0:
        records = variant.records
        served = records["served_by"].fillna("")
        mine = records[served.apply(lambda label: any(_same_model(label, m) for m in window.models))]
        base = percentile(between(mine, *variant.plan.bounds("baseline")).query("ok")["latency_ms"], 99)
        inside = between(mine, window.start, window.end).query("ok")
        added = float(detail.get("attributes", {}).get("latency", 0))
        if base is None or inside.empty or not added:
            return None
        slow = (inside["latency_ms"] > base + added / 2).mean()
        return {
            "fault": window.index,
            "configured": float(detail["toxicity"]),
            "observed": float(slow),
            "sample": len(inside),
            "basis": "records served by the model (toxicity is per connection)",
        }
    return None


def fault_table(variant: VariantData) -> list[dict[str, Any]]:
    """Per fault and model: time to detect and recovery time, with how each was measured."""
    rows = []
    horizon = variant.plan.end + 1
    for window in variant.windows:
        for model in window.models:
            detect, detect_basis = time_to_detect(variant, window, model)
            recover, recover_basis = recovery_time(
                variant.endpoint_counts, variant.plan, window, model, horizon
            )
            rows.append(
                {
                    "fault": window.index,
                    "model": model,
                    "kind": window.kind,
                    "start": window.start,
                    "end": window.end,
                    "time_to_detect_s": detect,
                    "detect_basis": detect_basis,
                    "recovery_time_s": recover,
                    "recovery_basis": recover_basis,
                }
            )
    return rows


def cpu_per_1000(variant: VariantData) -> float | None:
    """Gateway CPU seconds per 1,000 requests over the whole load (None when not measured)."""
    cpu = variant.meta.get("gateway_cpu_seconds")
    if cpu is None or variant.records.empty:
        return None
    return float(cpu) / len(variant.records) * 1000


def variant_slis(variant: VariantData) -> dict[str, Any]:
    """Every SLI of one variant, flat, plus per-phase stats and the per-fault table."""
    records, plan, windows = variant.records, variant.plan, variant.windows
    up, degraded_share = uptime(records, plan)
    faults = fault_table(variant)
    recoveries = [row["recovery_time_s"] for row in faults]
    detections = [row["time_to_detect_s"] for row in faults]
    overall = phase_stats(records, plan)
    return {
        "requests": len(records),
        "uptime": up,
        "degraded_share": degraded_share,
        "failure_impact": failure_impact(records, windows),
        "recovery_time_s": _worst(recoveries),
        "time_to_detect_s": _worst(detections),
        "p50_ms": overall["all"]["p50_ms"],
        "p95_ms": overall["all"]["p95_ms"],
        "p99_ms": overall["all"]["p99_ms"],
        "ttft_p50_ms": overall["all"]["ttft_p50_ms"],
        "fallback_latency_increase": fallback_latency_increase(records, plan, windows),
        "latency_samples": min(
            int(between(records, *plan.bounds("baseline"))["ok"].sum()),
            int(in_faults(records, windows)["ok"].sum()),
        ),
        "degraded_capacity": degraded_capacity(records, plan, windows),
        "retry_amplification": retry_amplification(records, plan),
        "truncated_successes": truncated_successes(records),
        "cpu_s_per_1000": cpu_per_1000(variant),
        "phases": overall,
        "faults": faults,
        "fault_rates": [r for w in windows if (r := observed_fault_rate(variant, w)) is not None],
    }


def _worst(values: list[float | None]) -> float | None:
    """The slowest of several per-fault times; never-happened (None) is the worst of all."""
    if not values:
        return None
    if any(v is None for v in values):
        return math.inf
    return max(v for v in values if v is not None)


def overheads(main: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """Policies on vs passthrough: baseline latency (p50, p99) and gateway CPU per request."""
    ours, theirs = main["phases"].get("baseline", {}), control["phases"].get("baseline", {})
    result: dict[str, Any] = {}
    for q in ("p50", "p99"):
        a, b = ours.get(f"{q}_ms"), theirs.get(f"{q}_ms")
        result[f"latency_overhead_{q}"] = a / b - 1 if a is not None and b else None
    result["baseline_samples"] = min(ours.get("requests", 0), theirs.get("requests", 0))
    a, b = main.get("cpu_s_per_1000"), control.get("cpu_s_per_1000")
    result["resource_overhead"] = a / b - 1 if a is not None and b else None
    result["cpu_samples"] = min(main.get("requests", 0), control.get("requests", 0))
    return result
