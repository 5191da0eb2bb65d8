"""Checks and verdicts of the conformance suite: pure functions of what was observed.

Observed per case: how the call ended (success, error, hang), whether the content was the whole
answer the endpoint produced (its marker), the reported model and usage, the time it took, and
the endpoints' own log of every request (when, to which model, its prompt size, how it ended).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from harness.conformance.catalogue import Case, Check

PASS, PARTIAL, SAFE, FAIL = "pass", "partial", "safe", "fail"


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the caller saw it."""

    outcome: str
    """success, error or hang."""
    complete: bool
    elapsed: float
    model: str = ""
    usage: bool = False
    error: str = ""
    sent_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything a case is judged on."""

    call: Call
    primary: list[dict[str, Any]]
    """The primary's log entries (t, outcome, prompt_tokens, prefill, stream), oldest first."""
    fallback: list[dict[str, Any]]
    alive: bool
    fallback_model: str = "fb-ok"
    sequence: list[Call] = field(default_factory=list)
    down_for: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    case: str
    name: str
    verdict: str
    reason: str
    checks: dict[str, str]
    elapsed: float
    attempts_primary: int
    attempts_fallback: int
    log: list[dict[str, Any]] = field(default_factory=list)
    """What the endpoints saw: every request to the primary and the fallback, in order."""


def check(check: Check, seen: Observed, case: Case) -> str:
    """pass or fail for one check (`na` where it does not apply)."""
    call, primary = seen.call, seen.primary
    times = [entry["t"] for entry in primary]
    value = check.value or 0
    kind = check.kind
    if kind == "no_hang":
        ok = call.outcome != "hang"
    elif kind == "complete":
        ok = call.outcome == "success" and call.complete
    elif kind == "no_truncated_success":
        ok = not (call.outcome == "success" and not call.complete)
    elif kind == "attempts_primary_min":
        ok = len(primary) >= value
    elif kind == "attempts_primary_max":
        ok = len(primary) <= value
    elif kind == "attempts_primary_eq":
        ok = len(primary) == value
    elif kind == "first_gap_min":
        ok = len(times) >= 2 and times[1] - times[0] >= value
    elif kind == "max_attempts_within":
        ok = not times or sum(1 for t in times if t - times[0] < (check.window or 0)) <= value
    elif kind == "wall_max":
        ok = call.outcome != "hang" and call.elapsed <= value
    elif kind == "alive_after":
        ok = seen.alive
    elif kind == "fallback_used":
        ok = bool(seen.fallback)
    elif kind == "reported_model_is_fallback":
        if not seen.fallback:
            return "na"
        ok = seen.fallback_model in call.model.rsplit("/", 1)[-1].lower()
    elif kind == "usage_present":
        ok = call.usage
    elif kind == "no_prefill_masking":
        rejected = [e for e in primary + seen.fallback if e.get("outcome") == "prefill_rejected"]
        ok = not (call.outcome == "error" and rejected)
    elif kind == "context_retry_discipline":
        sizes = [entry.get("prompt_tokens") for entry in primary]
        ok = len(primary) <= 1 or all(
            b is not None and a is not None and b < a for a, b in itertools.pairwise(sizes)
        )
    elif kind.startswith("seq_"):
        ok = _sequence(kind, value, seen)
    else:
        return "fail"  # an unknown check never passes
    return "pass" if ok else "fail"


def _sequence(kind: str, value: float, seen: Observed) -> bool:
    calls = seen.sequence
    outage = [c for c in calls if c.sent_at < seen.down_for]
    if kind == "seq_no_hang":
        return not any(c.outcome == "hang" for c in calls)
    if kind == "seq_served_during_outage":
        return bool(outage) and all(c.outcome == "success" and c.complete for c in outage)
    if kind == "seq_recovered_within":
        back = [
            e["t"]
            for e in seen.primary
            if e["t"] >= seen.down_for and e.get("outcome") == "ok" and e.get("stream")
        ]
        return bool(back) and back[0] - seen.down_for <= value
    if kind == "seq_probe_discipline":
        during = [e for e in seen.primary if e["t"] < seen.down_for]
        return len(during) <= len(outage)
    return False


def verdict(case: Case, seen: Observed) -> Verdict:
    """The case's verdict by the catalogue's rules, with every check's status."""
    statuses = {c.id: check(c, seen, case) for c in case.checks}
    call = seen.call
    failed_required = [
        c.id for c in case.checks if statuses[c.id] == "fail" and not c.advisory and not c.informational
    ]
    failed_advisory = [
        c.id for c in case.checks if statuses[c.id] == "fail" and c.advisory and not c.informational
    ]
    if case.sequence is not None:
        rescued = call.outcome == "success" and call.complete
    elif case.ideal == "error":
        rescued = call.outcome == "error"
    else:
        rescued = call.outcome == "success" and call.complete
    if call.outcome == "hang":
        result, reason = FAIL, "hang"
    elif case.ideal == "success" and call.outcome == "success" and not call.complete:
        result, reason = FAIL, "truncated answer presented as success"
    elif failed_required:
        result, reason = FAIL, f"failed: {', '.join(failed_required)}"
    elif case.ideal == "error" and call.outcome == "success":
        result, reason = PARTIAL, "answered by routing around the rejection"
    elif rescued and failed_advisory:
        result, reason = PARTIAL, f"advisory: {', '.join(failed_advisory)}"
    elif rescued:
        result, reason = PASS, "rescued, every check clean"
    else:
        result, reason = SAFE, f"not rescued: clean error ({call.error or call.outcome})"
    log = sorted(
        [{"to": "primary", **e} for e in seen.primary] + [{"to": "fallback", **e} for e in seen.fallback],
        key=lambda e: e["t"],
    )
    return Verdict(
        case.id, case.name, result, reason, statuses, call.elapsed, len(seen.primary), len(seen.fallback), log
    )
