"""Service level indicators from one variant's records, endpoint counts and audit trail.

Every function is pure (tables in, numbers out) so the verdicts can be tested on hand-built and
generated records with known answers. Definitions follow DESIGN.md's SLI table; where a choice
had to be made it is written in the docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reports.rundata import PHASES, FaultWindow, PhasePlan, VariantData
from reports.stats import (
    Timed,
    allow_for_drift,
    paired_ratio_interval,
    paired_ratio_of_sums_interval,
    percentile,
    quantile_interval,
    ratio_interval,
    ratio_of_sums_interval,
)

RECOVERED_SHARE = 0.9
"""Recovered = the model again gets >= 90 % of its baseline share of successful answers."""
NO_SHARE_ANSWERS = 2
"""A model that answered this few in the whole baseline had no share to get back: a health
probe or a stray request (a sequential plan's spare) sets no target it must reach again."""
DETECTED_SHARE = 0.1
"""Detected (endpoint side) = the model gets < 10 % of its baseline share of what was sent."""
OPENED = ("open", "isolated")
ENDPOINT_SIDE_DETECTABLE = ("endpoint", "latency", "bandwidth", "slicer", "slow_close", "limit_data")
"""Faults the endpoint still sees traffic through, so a drop in what it receives means ejection."""


PERCENTILES = {"p50_ms": 50, "p95_ms": 95, "p99_ms": 99}
STALL_MS = 1000.0
"""A stream whose longest gap between content events reaches a second stalled for its reader."""
LEAD_IN = 2.0
"""Seconds before a `down` fault in which traffic to the model means the outage was met."""


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
    """Counts, rates and latency percentiles of a slice of records lasting `seconds`, each
    percentile with its 95 % interval (`intervals`)."""
    ok = records[records["ok"]]
    served = successes(records)
    intervals = {key: quantile_interval(ok["latency_ms"], q) for key, q in PERCENTILES.items()}
    if "ttft_ms" in ok:
        intervals |= {f"ttft_{key}": quantile_interval(ok["ttft_ms"], q) for key, q in PERCENTILES.items()}
    return {
        "intervals": {key: list(value) for key, value in intervals.items() if value is not None},
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
) -> tuple[float | None, list[float] | None]:
    """p95 of successful answers in fault windows / p95 in the baseline - 1, and its interval."""
    base_sample = timed_latencies(between(records, *plan.bounds("baseline")))
    fault_sample = timed_latencies(in_faults(records, windows))
    base, faulted = percentile(base_sample.values, 95), percentile(fault_sample.values, 95)
    if not base or faulted is None:
        return None, None
    interval = ratio_interval(fault_sample, base_sample, 95)
    return faulted / base - 1, list(interval) if interval is not None else None


def timed_latencies(records: pd.DataFrame) -> Timed:
    """Latencies of the successful answers with the second each request started in."""
    ok = records[records["ok"]]
    return Timed.of(ok["latency_ms"].to_numpy(), ok["t"].to_numpy())


def degraded_capacity(records: pd.DataFrame, plan: PhasePlan, windows: list[FaultWindow]) -> float | None:
    """Successful (non-degraded) answers per second in fault windows / the same in the baseline."""
    base_start, base_end = plan.bounds("baseline")
    base_rate = len(successes(between(records, base_start, base_end))) / (base_end - base_start)
    fault_seconds = sum(end - start for start, end in merged(windows))
    if not base_rate or not fault_seconds:
        return None
    return len(successes(in_faults(records, windows))) / fault_seconds / base_rate


def received(counts: pd.DataFrame, start: float, end: float) -> int:
    """Requests all endpoints received in the whole seconds from `start` to `end` (rounded out)."""
    if counts.empty:
        return 0
    seconds = (counts.index >= math.floor(start)) & (counts.index < math.ceil(end))
    return int(counts.loc[seconds].to_numpy().sum())


def retry_amplification(variant: VariantData, spans: list[tuple[float, float]]) -> float | None:
    """Upstream attempts the endpoints received / requests clients sent, over the whole seconds
    inside `spans` (endpoints count per second: a partial second would mix in the next phase),
    from endpoint-side counts: no header of the system under test is needed or believed."""
    inner = [(math.ceil(a), math.floor(b)) for a, b in spans if math.floor(b) > math.ceil(a)]
    attempts = sum(received(variant.endpoint_counts, a, b) for a, b in inner)
    sent = sum(len(between(variant.records, a, b)) for a, b in inner)
    if variant.endpoint_counts.empty or not sent:
        return None
    return attempts / sent


def amplification_by_phase(variant: VariantData) -> dict[str, float | None]:
    plan = variant.plan
    return {
        "baseline": retry_amplification(variant, [plan.bounds("baseline")]),
        "faults": retry_amplification(variant, merged(variant.windows)),
        "recovery": retry_amplification(variant, [plan.bounds("recovery")]),
        "all": retry_amplification(variant, [(plan.warmup, plan.end)]),
    }


def wasted_tokens(variant: VariantData) -> dict[str, dict[str, float | None]]:
    """Per phase: words the endpoints sent that no client received (hedge losers, retried and
    abandoned streams), and their share of all the words sent."""
    answers, records, plan = variant.answers, variant.records, variant.plan
    found: dict[str, dict[str, float | None]] = {}
    if answers.empty or "sent" not in answers or "words" not in records:
        return found
    spans = {"baseline": [plan.bounds("baseline")], "faults": merged(variant.windows)}
    spans |= {"recovery": [plan.bounds("recovery")], "all": [(plan.warmup, plan.end)]}
    for phase, ranges in spans.items():
        sent = sum(float(answers[(answers["t"] >= a) & (answers["t"] < b)]["sent"].sum()) for a, b in ranges)
        got = sum(float(between(records, a, b)["words"].fillna(0).sum()) for a, b in ranges)
        wasted = max(0.0, sent - got)
        share = wasted / sent if sent else None
        found[phase] = {"sent": sent, "received": got, "wasted": wasted, "share": share}
    return found


def stream_contract(records: pd.DataFrame, plan: PhasePlan) -> dict[str, Any]:
    """How the streams kept the protocol, as the client saw them: in-band errors inside a 200,
    complete answers without `[DONE]`, stalls, time to first token and inter-token gaps."""
    streams = between(records, plan.warmup, math.inf)
    streams = streams[streams["stream"] & (streams["status"] == 200)]
    if streams.empty:
        return {"streams": 0}
    gaps = streams["max_gap_ms"] if "max_gap_ms" in streams else pd.Series(dtype=float)
    done = streams["done"] if "done" in streams else pd.Series(True, index=streams.index)
    inband = streams["inband_error"] if "inband_error" in streams else pd.Series(False, index=streams.index)
    return {
        "streams": len(streams),
        "inband_errors": int(inband.sum()),
        "without_done": int((streams["ok"] & ~done).sum()),
        "stalled": int((gaps.fillna(0) >= STALL_MS).sum()),
        "ttft_p95_ms": percentile(streams["ttft_ms"], 95),
        "max_gap_p99_ms": percentile(gaps, 99),
    }


def truncated_successes(records: pd.DataFrame) -> int:
    """Answers presented as complete (a 200, with `finish_reason` or `[DONE]`) whose content
    is a strict prefix of what the endpoint produced: judged by the client from the answer's
    own marker, whatever the system under test said. (Records from before the markers: answers
    that never said how they finished.)"""
    if "integrity" in records and records["integrity"].astype(bool).any():
        return int((records["error_kind"] == "truncated_success").sum())
    if "finish_reason" not in records:
        return 0
    suspicious = records["ok"] & ~records["degraded"] & (records["finish_reason"].fillna("") == "")
    return int(suspicious.sum())


def corrupted_successes(records: pd.DataFrame) -> int:
    """Answers delivered with a 200 whose content no endpoint produced as it stands (altered,
    spliced, or made up and not admitted as degraded)."""
    return int((records["error_kind"] == "corrupted_success").sum())


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


def baseline_counts(counts: pd.DataFrame, plan: PhasePlan, outcome: str | None) -> pd.Series:
    """Each model's answers (of `outcome`, or all) over the whole baseline (whole seconds)."""
    if counts.empty:
        return pd.Series(dtype=float)
    first, last = math.ceil(plan.warmup), math.floor(plan.baseline_end) - 1
    window = counts.loc[(counts.index >= first) & (counts.index <= last)]
    if outcome is None:
        return window.T.groupby(level="model").sum().T.sum()
    if outcome in counts.columns.levels[1]:
        return window.xs(outcome, axis=1, level="outcome").sum()
    return pd.Series(dtype=float)


def baseline_shares(counts: pd.DataFrame, plan: PhasePlan, outcome: str | None) -> pd.Series:
    """Each model's share over the whole baseline (whole seconds inside it)."""
    per_model = baseline_counts(counts, plan, outcome)
    total = per_model.sum()
    return per_model / total if total else per_model * 0.0


def recovery_time(
    counts: pd.DataFrame,
    plan: PhasePlan,
    window: FaultWindow,
    model: str,
    horizon: float,
    others: Sequence[FaultWindow] = (),
) -> tuple[float | None, str]:
    """Seconds the model was up without its share back: from the end of its outage until it
    gets >= 90 % of its baseline share again.

    Endpoint-side counts of successful answers in 1 s windows, starting with the second the
    outage ends in, so the answer is exact to the window resolution. A model with no baseline
    share has nothing to recover (0). None when it never recovered before the run ended.

    The outage is the fault, with each of the model's `others` faults of kind `down` that
    overlaps it or begins before the model got its share back: while the model is down nobody
    can give it traffic, and counting through that would charge the scenario's timeline (and
    not slamming a flapping model each time it returns) to the system under test. The time it
    was up between two such outages still counts: the figure is the longest stretch the model
    was up without its share, between them or after the last. Other kinds of fault do not stop
    the clock.
    """
    answered = float(baseline_counts(counts, plan, "ok").get(model, 0.0))
    if answered <= NO_SHARE_ANSWERS:
        return 0.0, f"no baseline share to restore ({answered:.0f} answers in the baseline)"
    expected = float(baseline_shares(counts, plan, "ok").get(model, 0.0))
    shares = per_second_shares(counts, "ok")

    def back(since: float, until: float) -> float | None:
        for second in range(math.floor(since), math.ceil(until)):
            if second in shares.index and model in shares.columns:
                share = shares.at[second, model]
                if not np.isnan(share) and share >= RECOVERED_SHARE * expected:
                    return max(0.0, second - since)
        return None

    outage, up_between = window, 0.0
    for fault in sorted(others, key=lambda w: w.start):
        if fault.kind != "down" or fault.end <= outage.end:
            continue
        if fault.start > outage.end:
            if back(outage.end, fault.start) is not None:
                break
            up_between = max(up_between, fault.start - outage.end)
        outage = fault
    seconds = back(outage.end, horizon)
    if seconds is None:
        return None, "did not get its share back before the run ended"
    if outage is window:
        return seconds, "endpoint counts"
    return max(seconds, up_between), (
        f"endpoint counts: down again until the end of fault {outage.index} before it was back, "
        f"{seconds:g} s after that, up {up_between:g} s at most between"
    )


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


def kept_sending(variant: VariantData, window: FaultWindow, model: str) -> bool:
    """Whether the system under test went on sending the model its usual traffic through the
    fault: on average over the fault's whole seconds, its endpoint received >= 90 % of the
    requests a second it received in the baseline (absolute counts: relative shares hide a
    fault on every model, cut alike). Such a system reads a recovery near 0, its model's
    answers coming back the moment the fault ends, and pays during the fault in failed or slow
    answers. The passthrough control does so by construction. False where the endpoint cannot
    tell (a model taken down sees no attempt), for a fault under a second, and where a toxic
    held requests back before the endpoint (it errs towards no claim).

    On the peers bench of 2 December, systems that kept sending read 0.99-2.19 of their usual
    traffic, those that held the model 0.00-0.17 (ours held a rate-limited model for its
    Retry-After, at 0.17, with no breaker opened). On 3 December LiteLLM, which spreads
    requests at random over the models and never took the slow one out, read 0.86 in
    latency-spike: ~13 requests a second over a 6 s fault, 86 % of its usual count is within
    sampling noise of it. So "usual" is 90 % of it, or, where that is looser, anything within
    three standard deviations of Poisson counts (`usual_traffic_floor`), never under half."""
    if variant.mode == "passthrough":
        return True
    counts = variant.endpoint_counts
    seconds = range(math.ceil(window.start), math.floor(window.end))
    if window.kind not in ENDPOINT_SIDE_DETECTABLE or counts.empty or not seconds:
        return False
    plan = variant.plan
    baseline_seconds = math.floor(plan.baseline_end) - math.ceil(plan.warmup)
    usual = float(baseline_counts(counts, plan, None).get(model, 0.0)) / max(baseline_seconds, 1)
    per_model = counts.T.groupby(level="model").sum().T
    if usual <= 0 or model not in per_model.columns:
        return False
    got = per_model[model].reindex(seconds, fill_value=0)
    return float(got.mean()) >= usual_traffic_floor(usual, len(seconds), baseline_seconds)


def usual_traffic_floor(usual: float, seconds: int, baseline_seconds: int) -> float:
    """The fewest requests a second, on average over `seconds`, that still count as a model's
    usual `usual` a second (itself averaged over `baseline_seconds`): `RECOVERED_SHARE` of it,
    or down to three standard deviations below it where counts that small vary more (Poisson
    counts in both spans), but never under half of it, so a model held to a trickle never
    passes for one that was not."""
    noise = 3.0 * math.sqrt(usual * (1.0 / max(seconds, 1) + 1.0 / max(baseline_seconds, 1)))
    return max(0.5 * usual, min(RECOVERED_SHARE * usual, usual - noise))


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


def exercised(variant: VariantData, window: FaultWindow, model: str) -> tuple[bool, str]:
    """Did the system under test meet this fault on this model? Traffic reached the model
    during the window (its endpoint's counts, or bytes clients sent into its proxy: a toxic may
    hold a request before the endpoint sees it); for a model taken down (connections refused,
    so nothing arrives), traffic it had just before the fault began. A fault nobody met tested
    nothing, so its detect and recovery times are not figures at all."""
    start, end = window.start, window.end
    counts = variant.endpoint_counts
    if not counts.empty and model in counts.columns.get_level_values("model"):
        if received(counts[[model]], start, end) > 0:
            return True, "its endpoint received traffic during the fault"
        if window.kind == "down" and received(counts[[model]], max(0.0, start - LEAD_IN), start) > 0:
            return True, f"it had traffic in the {LEAD_IN:g} s before it went down"
    proxied = variant.proxy_bytes
    if not proxied.empty and model in proxied:
        inside = proxied.loc[(proxied.index >= math.floor(start)) & (proxied.index <= math.ceil(end)), model]
        if float(inside.sum()) > 0:
            return True, "clients sent bytes into its proxy during the fault"
    if counts.empty and proxied.empty:
        return False, "no endpoint or proxy counts to tell"
    return False, "no traffic reached it during the fault: the system under test never met this fault"


def fault_table(variant: VariantData) -> list[dict[str, Any]]:
    """Per fault and model: whether it was exercised, time to detect and recovery time (n/a
    when not exercised), with how each was measured."""
    horizon = variant.plan.end + 1
    met = _met_faults(variant)
    rows = []
    for window, model, exercised_it, met_basis in met:
        if exercised_it:
            detect, detect_basis = time_to_detect(variant, window, model)
            kept = kept_sending(variant, window, model)
            others = [w for w, m, _, _ in met if m == model and w is not window]
            recover, recover_basis = recovery_time(
                variant.endpoint_counts, variant.plan, window, model, horizon, others
            )
        else:
            detect, detect_basis = None, "n/a: not exercised"
            recover, recover_basis = None, "n/a: not exercised"
            kept = None
        rows.append(
            {
                "fault": window.index,
                "model": model,
                "kind": window.kind,
                "start": window.start,
                "end": window.end,
                "exercised": exercised_it,
                "exercised_basis": met_basis,
                "time_to_detect_s": detect,
                "detect_basis": detect_basis,
                "recovery_time_s": recover,
                "recovery_basis": recover_basis,
                "kept_sending": kept,
            }
        )
    return sorted(rows, key=lambda row: row["fault"])


def _met_faults(variant: VariantData) -> list[tuple[FaultWindow, str, bool, str]]:
    """Each fault and model in start order, whether the system under test met it, and why."""
    last_met: dict[str, FaultWindow] = {}
    faults = []
    for window in sorted(variant.windows, key=lambda w: w.start):
        for model in window.models:
            met, met_basis = exercised(variant, window, model)
            earlier = last_met.get(model)
            if not met and earlier is not None and window.start - earlier.end <= LEAD_IN:
                # A model that flaps back for a moment is still out for a client that just met
                # its outage: keeping it out is how that client meets this fault too.
                met = True
                met_basis = (
                    f"it met fault {earlier.index} on this model, which ended "
                    f"{window.start - earlier.end:.1f} s before this one began"
                )
            if met:
                last_met[model] = window
            faults.append((window, model, met, met_basis))
    return faults


def with_ground_truth(variant: VariantData) -> pd.DataFrame:
    """The records, where an answer whose marker names an id no endpoint produced (forged)
    is a corrupted success however whole it looks."""
    records, answers = variant.records, variant.answers
    if answers.empty or "id" not in answers or "answer_id" not in records:
        return records
    claimed = records["answer_id"].fillna("")
    forged = (claimed != "") & ~claimed.isin(set(answers["id"])) & records["ok"]
    if not forged.any():
        return records
    records = records.copy()
    records.loc[forged, "ok"] = False
    records.loc[forged, "error_kind"] = "corrupted_success"
    return records


def cpu_per_1000(variant: VariantData) -> float | None:
    """Gateway CPU seconds per 1,000 requests over the whole load (None when not measured)."""
    cpu = variant.meta.get("gateway_cpu_seconds")
    if cpu is None or variant.records.empty:
        return None
    return float(cpu) / len(variant.records) * 1000


def cpu_samples(variant: VariantData) -> dict[int, tuple[float, float]]:
    """Per second of the load after warm-up: (CPU seconds, requests started), for intervals."""
    cpu = variant.cpu
    if cpu.empty or "cpu_s" not in cpu:
        return {}
    started = variant.records["t"].dropna().astype(int).value_counts()
    return {
        int(second): (float(cpu.at[second, "cpu_s"]), float(started.get(second, 0)))
        for second in cpu.index
        if variant.plan.warmup <= second < variant.plan.end
    }


def variant_slis(variant: VariantData) -> dict[str, Any]:
    """Every SLI of one variant, flat, plus per-phase stats, the per-fault table and the
    95 % intervals of the figures judged statistically (`intervals`)."""
    plan, windows = variant.plan, variant.windows
    records = with_ground_truth(variant)
    up, degraded_share = uptime(records, plan)
    faults = fault_table(variant)
    met = [row for row in faults if row["exercised"]]
    overall = phase_stats(records, plan)
    increase, increase_interval = fallback_latency_increase(records, plan, windows)
    amplification = amplification_by_phase(variant)
    intervals = {key: overall["all"]["intervals"][key] for key in overall["all"]["intervals"]}
    if increase_interval is not None:
        intervals["fallback_latency_increase"] = increase_interval
    for phase, stats in overall.items():
        stats["retry_amplification"] = amplification.get(phase)
    return {
        "requests": len(records),
        "uptime": up,
        "degraded_share": degraded_share,
        "failure_impact": failure_impact(records, windows),
        "faults_exercised": len({row["fault"] for row in met}),
        "faults_not_exercised": sorted({row["fault"] for row in faults} - {row["fault"] for row in met}),
        "recovery_time_s": _worst([row["recovery_time_s"] for row in met]),
        "time_to_detect_s": _worst([row["time_to_detect_s"] for row in met]),
        "p50_ms": overall["all"]["p50_ms"],
        "p95_ms": overall["all"]["p95_ms"],
        "p99_ms": overall["all"]["p99_ms"],
        "ttft_p50_ms": overall["all"]["ttft_p50_ms"],
        "fallback_latency_increase": increase,
        "degraded_capacity": degraded_capacity(records, plan, windows),
        "retry_amplification": amplification["all"],
        "truncated_successes": truncated_successes(records),
        "corrupted_successes": corrupted_successes(records),
        "wasted_tokens": wasted_tokens(variant),
        "stream_contract": stream_contract(records, plan),
        "cpu_s_per_1000": cpu_per_1000(variant),
        "simulated": bool(variant.meta.get("simulated")),
        "t0": variant.meta.get("t0"),
        "intervals": intervals,
        "phases": overall,
        "faults": faults,
        "fault_rates": [r for w in windows if (r := observed_fault_rate(variant, w)) is not None],
        "_latency_samples": {"baseline": timed_latencies(between(records, *plan.bounds("baseline")))},
        "_cpu_samples": cpu_samples(variant),
    }


def _worst(values: list[float | None]) -> float | None:
    """The slowest of several per-fault times; never-happened (None) is the worst of all."""
    if not values:
        return None
    if any(v is None for v in values):
        return math.inf
    return max(v for v in values if v is not None)


def _seconds(phase: dict[str, Any]) -> float:
    """How long a phase lasted, from its request count and rate (0 when unknown)."""
    rps = phase.get("rps")
    return phase.get("requests", 0) / rps if rps else 0.0


MIN_CPU_SECONDS = 5
"""Per-second CPU readings below which the CPU overhead's interval is left open. A reading is
in 10 ms clock ticks, and a gateway at 40 requests/s uses ~8 ticks a second, so one tick more or
less moves a second by ~12 %; a bootstrap over two or three such seconds cannot see that."""


def overheads(main: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """Policies on vs passthrough: baseline latency (p50, p99) and gateway CPU per request,
    each with its interval (latency: a bootstrap of both baselines by whole seconds; CPU: a
    bootstrap over per-second samples; both over the same seconds when the variants ran together)."""
    ours, theirs = main["phases"].get("baseline", {}), control["phases"].get("baseline", {})
    result: dict[str, Any] = {}
    # Variants run one after the other see different seconds: a neighbour that slows all of one
    # window shifts every sample of it alike, which no interval over its samples can see
    # (stats.DRIFT). Run together (one t0), whatever slows one slows the other.
    together = main.get("t0") is not None and main.get("t0") == control.get("t0")
    seconds = math.inf if together else min(_seconds(ours), _seconds(theirs))
    if main.get("simulated"):  # the gateway's own work takes no virtual time: nothing to compare
        return {"latency_overhead_p50": None, "latency_overhead_p99": None, "resource_overhead": None}
    intervals = main.setdefault("intervals", {})
    for q in ("p50", "p99"):
        a, b = ours.get(f"{q}_ms"), theirs.get(f"{q}_ms")
        result[f"latency_overhead_{q}"] = a / b - 1 if a is not None and b else None
        interval = (paired_ratio_interval if together else ratio_interval)(
            main["_latency_samples"]["baseline"], control["_latency_samples"]["baseline"], int(q[1:])
        )
        if interval is not None:
            intervals[f"latency_overhead_{q}"] = list(allow_for_drift(interval, seconds))
    result["baseline_samples"] = min(ours.get("requests", 0), theirs.get("requests", 0))
    a, b = main.get("cpu_s_per_1000"), control.get("cpu_s_per_1000")
    result["resource_overhead"] = a / b - 1 if a is not None and b else None
    if together:  # per second of the same clock: drawn alike for both
        cpu_interval = paired_ratio_of_sums_interval(main["_cpu_samples"], control["_cpu_samples"])
    else:
        cpu_interval = ratio_of_sums_interval(
            list(main["_cpu_samples"].values()), list(control["_cpu_samples"].values())
        )
    cpu_seconds = min(len(main["_cpu_samples"]), len(control["_cpu_samples"]))  # one sample a second
    if cpu_interval is not None and cpu_seconds < MIN_CPU_SECONDS:
        cpu_interval = (-math.inf, math.inf)
    if cpu_interval is not None:
        seconds_apart = math.inf if together else cpu_seconds
        intervals["resource_overhead"] = list(allow_for_drift(cpu_interval, seconds_apart))
    result["cpu_samples"] = min(main.get("requests", 0), control.get("requests", 0))
    return result
