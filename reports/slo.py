"""SLO targets and verdicts: pure functions from SLIs to pass / fail / inconclusive / skipped.

Defaults are the source spec's (BIP-03) plus the harness's own honesty checks; a scenario's
`slo:` replaces, adds or switches off targets. Percentiles, their increase and the overheads are
judged on their 95 % interval: pass or fail when the whole interval is on one side of the target,
inconclusive (with the interval) when it straddles. A scenario with faults whose control passes
every SLO "did not bite", and one whose faults the system under test never met was "not
exercised": neither proved anything, and the gate fails both.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from reports.stats import answers_to_bound
from reports.thresholds import PERCENT_SLIS, Threshold, ThresholdError, format_percent

DEFAULT_TARGETS: tuple[Threshold, ...] = tuple(
    Threshold.parse(text)
    for text in (
        "uptime >= 99.9%",
        "recovery_time_s <= 30",
        "failure_impact <= 5%",
        "fallback_latency_increase <= 10%",
        "degraded_capacity >= 90%",
        "truncated_successes == 0",
        "corrupted_successes == 0",
        "retry_amplification{phase:baseline} <= 1.1",
        "retry_amplification{phase:faults} <= 2.0",
        "resource_overhead <= 20%",
        "latency_overhead_p50 <= 5%",
        "latency_overhead_p99 <= 5%",
    )
)
CROSS_VARIANT = frozenset({"resource_overhead", "latency_overhead_p50", "latency_overhead_p99"})
"""Judged on the system under test against its control, so only where a control ran."""
NOT_SIMULATED = "not simulated: the gateway's own work takes no virtual time (run it for real)"
STATISTICAL = frozenset(
    {
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "ttft_p99_ms",
        "fallback_latency_increase",
        *CROSS_VARIANT,
    }
)
"""Figures estimated from samples: judged on their interval, never on the point alone."""
RUN_SLIS = frozenset(
    {
        "requests",
        "uptime",
        "degraded_share",
        "failure_impact",
        "recovery_time_s",
        "time_to_detect_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "ttft_p50_ms",
        "fallback_latency_increase",
        "degraded_capacity",
        "retry_amplification",
        "truncated_successes",
        "corrupted_successes",
        "cpu_s_per_1000",
        *CROSS_VARIANT,
    }
)
PHASE_SLIS = frozenset(
    {
        "requests",
        "errors",
        "error_rate",
        "degraded",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "retry_amplification",
    }
    | {"rps", "success_rps"}
)
OFF = (False, None, "off", "none", "disabled")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One SLO judged on one variant."""

    sli: str
    target: str
    measured: float | None
    status: str
    """pass, fail, inconclusive (the interval straddles the target) or skipped (nothing to
    judge, with the reason)."""
    reason: str
    interval: tuple[float, float] | None = None
    """The 95 % interval the verdict was judged on, for figures estimated from samples."""

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def inconclusive(self) -> bool:
        return self.status == "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.measured is not None and math.isinf(self.measured):
            data["measured"] = None
        if self.interval is not None:
            data["interval"] = [None if math.isinf(v) else v for v in self.interval]
        return data


def check_threshold(threshold: Threshold) -> None:
    """Raise ThresholdError when the threshold names an SLI the reports do not compute."""
    known = PHASE_SLIS if threshold.phase else RUN_SLIS
    if threshold.sli not in known:
        raise ThresholdError(f"unknown SLI {threshold.sli!r}; one of {', '.join(sorted(known))}")


def targets(overrides: dict[str, Any] | list[str] | None) -> list[Threshold]:
    """The defaults with a scenario's `slo:` applied.

    A mapping replaces or adds by key (`uptime: ">= 99%"`, `"p99_ms{phase:faults}": "< 800"`) and
    switches a default off with `off`; a list adds whole expressions. Errors name the key.
    """
    chosen = {t.key: t for t in DEFAULT_TARGETS}
    defaults_op = {t.key: t.op for t in DEFAULT_TARGETS}
    items: list[tuple[str, Any]]
    if overrides is None:
        items = []
    elif isinstance(overrides, dict):
        items = [(str(k), v) for k, v in overrides.items()]
    else:
        items = [(f"[{i}]", text) for i, text in enumerate(overrides)]
    for key, value in items:
        try:
            if key.startswith("["):
                threshold = Threshold.parse(str(value))
            elif value in OFF or str(value).strip().lower() in OFF:
                if key not in chosen:
                    raise ThresholdError(
                        f"{key!r} is not a target that is on (defaults: {', '.join(chosen)})"
                    )
                del chosen[key]
                continue
            else:
                threshold = Threshold.from_condition(key, value, defaults_op.get(key, "<="))
            check_threshold(threshold)
        except ThresholdError as exc:
            raise ThresholdError(
                f"slo.{key.strip('[]') if not key.startswith('[') else key}: {exc}"
            ) from None
        chosen[threshold.key] = threshold
    return list(chosen.values())


def measured(slis: dict[str, Any], threshold: Threshold) -> tuple[float | None, str]:
    """The figure a threshold is judged on, or None and why there is none."""
    if threshold.phase:
        value = slis.get("phases", {}).get(threshold.phase, {}).get(threshold.sli)
    else:
        value = slis.get(threshold.sli)
    if value is None:
        return None, _why_missing(threshold.sli, slis)
    return float(value), ""


def interval_of(slis: dict[str, Any], threshold: Threshold) -> tuple[float, float] | None:
    """The 95 % interval of the figure a threshold is judged on, where it has one."""
    if threshold.phase:
        found = slis.get("phases", {}).get(threshold.phase, {}).get("intervals", {}).get(threshold.sli)
    else:
        found = slis.get("intervals", {}).get(threshold.sli)
    if found is None:
        return None
    low = -math.inf if found[0] is None else float(found[0])
    high = math.inf if found[1] is None else float(found[1])
    return low, high


def _why_missing(sli: str, slis: dict[str, Any]) -> str:
    if sli in ("recovery_time_s", "time_to_detect_s", "failure_impact") and not slis.get("faults"):
        return "no fault in this scenario"
    if sli in ("fallback_latency_increase", "degraded_capacity") and not slis.get("faults"):
        return "no fault in this scenario"
    if sli in ("recovery_time_s", "time_to_detect_s") and slis.get("faults_not_exercised"):
        return "n/a: no fault was exercised"
    if sli in CROSS_VARIANT and slis.get("simulated"):
        return NOT_SIMULATED
    if sli in CROSS_VARIANT:
        return "needs a control run and gateway CPU figures"
    return "not measured in this run"


def judge(slis: dict[str, Any], chosen: list[Threshold], *, against_control: bool) -> list[Verdict]:
    """Every target on one variant's SLIs; cross-variant ones only where `against_control`."""
    verdicts = []
    for threshold in chosen:
        if threshold.sli in CROSS_VARIANT and not against_control:
            continue
        value, why = measured(slis, threshold)
        target = threshold.describe()
        if value is None:
            verdicts.append(Verdict(threshold.key, target, None, "skipped", why))
            continue
        shown = show(threshold.sli, value)
        if threshold.sli in STATISTICAL and threshold.op != "==":
            verdicts.append(_judge_interval(threshold, value, interval_of(slis, threshold)))
        elif threshold.holds(value):
            verdicts.append(Verdict(threshold.key, target, value, "pass", f"{shown} {target}"))
        else:
            verdicts.append(
                Verdict(threshold.key, target, value, "fail", f"measured {shown}, target {target}")
            )
    return verdicts


def _judge_interval(threshold: Threshold, value: float, interval: tuple[float, float] | None) -> Verdict:
    """Pass when the whole interval meets the target, fail when none of it does, else
    inconclusive: the samples cannot tell which side of the target the truth is on."""
    target = threshold.describe()
    shown = show(threshold.sli, value)
    if interval is None:
        reason = f"measured {shown}, but too few samples for an interval; target {target}"
        return Verdict(threshold.key, target, value, "inconclusive", reason)
    low, high = interval
    span = f"95% interval {show(threshold.sli, low)} to {show(threshold.sli, high)}"
    if threshold.holds(low) and threshold.holds(high):
        return Verdict(threshold.key, target, value, "pass", f"{shown} ({span}) {target}", interval)
    if not threshold.holds(low) and not threshold.holds(high):
        return Verdict(
            threshold.key, target, value, "fail", f"measured {shown} ({span}), target {target}", interval
        )
    reason = (
        f"measured {shown}, but its {span} straddles the target {target}{_why_open(threshold.sli, interval)}"
    )
    return Verdict(threshold.key, target, value, "inconclusive", reason, interval)


def _why_open(sli: str, interval: tuple[float, float]) -> str:
    """Why an end of a percentile's interval is open: too few answers to reach its tail, which
    a longer or busier window fixes and no amount of re-running does."""
    if all(math.isfinite(end) for end in interval):
        return ""
    found = re.search(r"p(\d\d)", sli)
    q = 95 if sli == "fallback_latency_increase" else int(found.group(1)) if found else None
    if q is None:
        return ""
    return f" (an end is open: bounding a p{q} takes at least {answers_to_bound(q)} answers)"


def show(sli: str, value: float | None) -> str:
    """A measured figure as people read it."""
    if value is None:
        return "-"
    if math.isinf(value):
        return (
            "never"
            if value > 0 and (sli.endswith("_s") or sli.endswith("_ms"))
            else ("-inf" if value < 0 else "inf")
        )
    if sli in PERCENT_SLIS:
        return format_percent(value)
    if sli.endswith("_s"):
        return f"{value:.1f} s"
    if sli.endswith("_ms"):
        return f"{value:.1f} ms"
    return f"{value:g}"


def bite(control: list[Verdict] | None, has_faults: bool) -> dict[str, Any]:
    """Did the scenario's fault hurt the control? A fault that hurts nobody proves nothing."""
    if not has_faults:
        return {"checked": False, "bit": None, "reason": "no faults: a reference run, nothing to bite"}
    if control is None:
        return {"checked": False, "bit": None, "reason": "no control run to compare with"}
    breached = [v.sli for v in control if v.failed]
    if breached:
        return {"checked": True, "bit": True, "reason": f"the control breached {', '.join(breached)}"}
    return {"checked": True, "bit": False, "reason": "did not bite: the control passed every SLO"}


def exercise(faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per fault (over its models): exercised when the system under test met it on any model."""
    by_fault: dict[int, dict[str, Any]] = {}
    for row in faults:
        entry = by_fault.setdefault(
            row["fault"],
            {"fault": row["fault"], "kind": row["kind"], "models": [], "exercised": False, "basis": ""},
        )
        entry["models"].append(row["model"])
        if row["exercised"] and not entry["exercised"]:
            entry["exercised"], entry["basis"] = True, f"{row['model']}: {row['exercised_basis']}"
        elif not entry["exercised"]:
            entry["basis"] = row["exercised_basis"]
    return list(by_fault.values())


def passed(
    main: list[Verdict], bite_check: dict[str, Any], exercised: list[dict[str, Any]] | None = None
) -> bool:
    """Every SLO held, the fault bit the control, and the system under test met every fault."""
    met = all(fault["exercised"] for fault in exercised or [])
    return not any(v.failed for v in main) and bite_check["bit"] is not False and met
