"""Fault timelines as Hypothesis strategies: the whole fault catalogue, on any models, at any
times, overlapping and flapping, with operator steps.

Each draw is the `faults` (and `admin`) of a scenario file, so whatever the search finds can be
written out and replayed on the real stack as it is. Every draw is fair to the gateway: at every
moment at least one model is untouched (by a fault or an isolate/drain), so a breach is the
gateway's doing, not an outage no gateway could hide; windows last 2 s at least (a percentile
over fewer requests is noise) and a Retry-After asks for 5 s at most (honouring a longer one
is right, and would only read as slow recovery). Choices are ordered simplest first, so
shrinking heads for one plain fault on one model for the shortest time.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

STEP = 0.5
"""Times and durations are multiples of half a second: readable files, and shrinking that
lands on round numbers."""
SHORTEST = 2.0
"""No fault window is shorter: a percentile over the requests of half a second is noise."""
LONGEST = 6.0
LATEST = 6.0


def _seconds(low: float, high: float) -> st.SearchStrategy[float]:
    return st.integers(int(low / STEP), int(high / STEP)).map(lambda n: n * STEP)


def _network() -> st.SearchStrategy[dict[str, Any]]:
    toxics = st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("latency"),
                "attributes": st.fixed_dictionaries(
                    {"latency": st.integers(1, 60).map(lambda n: n * 50)},
                    optional={"jitter": st.integers(0, 10).map(lambda n: n * 50)},
                ),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("reset_peer"),
                "attributes": st.fixed_dictionaries({"timeout": st.integers(0, 20).map(lambda n: n * 100)}),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("timeout"),
                "attributes": st.fixed_dictionaries({"timeout": st.sampled_from([0, 500, 1000, 3000])}),
            }
        ),
        st.fixed_dictionaries(
            {"type": st.just("bandwidth"), "attributes": st.fixed_dictionaries({"rate": st.integers(1, 50)})}
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("limit_data"),
                "attributes": st.fixed_dictionaries({"bytes": st.integers(2, 50).map(lambda n: n * 100)}),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("slicer"),
                "attributes": st.fixed_dictionaries(
                    {"average_size": st.integers(1, 64), "delay": st.integers(1, 100).map(lambda n: n * 1000)}
                ),
            }
        ),
    )
    return st.tuples(toxics, st.sampled_from([1.0, 0.5, 0.2])).map(
        lambda pair: {**pair[0], "toxicity": pair[1]} if pair[1] < 1 else pair[0]
    )


def _endpoint() -> st.SearchStrategy[dict[str, Any]]:
    errors = st.one_of(
        st.fixed_dictionaries(
            {
                "error_rate": st.integers(1, 10).map(lambda n: n / 10),
                "status": st.sampled_from([503, 500, 502]),
            }
        ),
        st.fixed_dictionaries(
            {
                "error_rate": st.integers(1, 10).map(lambda n: n / 10),
                "status": st.just(429),
                "retry_after": st.sampled_from([0.5, 1.0, 2.0, 5.0]),
            }
        ),
    )
    return st.one_of(
        errors,
        st.fixed_dictionaries({"cut_after_tokens": st.integers(0, 10)}),
        st.fixed_dictionaries({"reset_before_headers": st.just(True)}),
        st.fixed_dictionaries({"malformed_json": st.just(True)}),
        st.fixed_dictionaries({"extra_first_token": _seconds(0.5, 5.0)}),
        st.fixed_dictionaries({"token_rate": st.sampled_from([2.0, 5.0, 20.0])}),
        st.fixed_dictionaries(
            {"stall_after_tokens": st.integers(1, 8), "stall_seconds": _seconds(1.0, 6.0)},
            optional={"close_after_stall": st.just(True)},
        ),
        st.fixed_dictionaries({"silent": st.just(True)}),
        st.fixed_dictionaries({"cut_before_finish": st.just(True)}),
        st.fixed_dictionaries({"first_token_after_headers": _seconds(0.5, 5.0)}),
        st.fixed_dictionaries({"malformed_sse": st.just(True)}),
        st.fixed_dictionaries({"no_done": st.just(True)}),
        st.fixed_dictionaries({"rejects_prefill": st.just(True)}),
        st.fixed_dictionaries(
            {"first_n": st.integers(1, 20), "error_rate": st.just(1.0), "status": st.sampled_from([503, 429])}
        ),
        st.fixed_dictionaries({"error_after_tokens": st.integers(0, 10)}),
        # Not `tokens_per_minute`: its provider announces a reset at the end of its minute, which
        # a window of seconds ends long before, so "recovered after the fault" would judge the
        # gateway for honouring the announced reset (the token-budget scenario says so too).
    )


def _fault(models: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    targets = st.one_of(
        st.sampled_from(models),
        st.lists(st.sampled_from(models), min_size=2, max_size=max(2, len(models) - 1), unique=True),
    )
    kinds = st.one_of(
        st.just({"down": True}),
        _endpoint().map(lambda endpoint: {"endpoint": endpoint}),
        _network().map(lambda network: {"network": network}),
    )
    return st.builds(
        lambda at, length, target, kind: {"at": at, "for": length, "target": target, **kind},
        _seconds(0.0, LATEST),
        _seconds(SHORTEST, LONGEST),
        targets,
        kinds,
    )


def _admin(models: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda at, length, action, target: {
            "at": at,
            "for": length,
            "action": action,
            "target": target,
            "reason": "explored",
            **({"weight": 0.2} if action == "weight" else {}),
        },
        _seconds(0.0, LATEST),
        _seconds(SHORTEST, LONGEST),
        st.sampled_from(["isolate", "drain", "weight"]),
        st.sampled_from(models),
    )


def touched(entry: dict[str, Any]) -> set[str]:
    target = entry.get("target")
    return {target} if isinstance(target, str) else set(target or [])


def survivable(faults: list[dict[str, Any]], admin: list[dict[str, Any]], models: list[str]) -> bool:
    """At every moment at least one model has no fault and no isolate or drain on it."""
    spans = [(f["at"], f["at"] + f["for"], touched(f)) for f in faults]
    spans += [(a["at"], a["at"] + a["for"], touched(a)) for a in admin if a["action"] != "weight"]
    moments = sorted({start for start, _, _ in spans})
    for t in moments:
        hit = set().union(*(names for start, end, names in spans if start <= t < end))
        if hit >= set(models):
            return False
    return True


def _same_fault(fault: dict[str, Any]) -> str:
    return json.dumps(fault, sort_keys=True)


def timelines(models: list[str], max_faults: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """`{"faults": [...], "admin": [...]}`: one to `max_faults` faults, at most one operator step,
    survivable (see `survivable`)."""
    drawn = st.fixed_dictionaries(
        {
            # Two identical faults are one fault: drawn apart, the shrinker could not merge them.
            "faults": st.lists(_fault(models), min_size=1, max_size=max_faults, unique_by=_same_fault),
            "admin": st.lists(_admin(models), max_size=1),
        }
    )
    return drawn.filter(lambda t: survivable(t["faults"], t["admin"], models))
