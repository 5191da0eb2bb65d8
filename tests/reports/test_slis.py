"""SLI math on hand-built and generated runs with known answers."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports import load_run
from reports.sli import usual_traffic_floor, variant_slis
from tests.reports.synthetic import Variant, outage_run, write_run

PHASES = {"warmup": 2.0, "baseline": 8.0, "faults": 10.0, "recovery": 10.0}
WINDOW = {"fault": 0, "start": 10.0, "end": 20.0, "models": ["model-0"], "kind": "down", "detail": None}


def slis_of(folder, name="resilient"):
    return variant_slis(load_run(folder).variants[name])


def test_an_outage_of_exactly_seven_seconds_recovers_in_seven(tmp_path):
    slis = slis_of(outage_run(tmp_path / "run", fault=(10.0, 20.0), back_after=7.0))
    assert slis["recovery_time_s"] == pytest.approx(7.0, abs=1.0)
    (row,) = slis["faults"]
    assert row["recovery_basis"] == "endpoint counts"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.floats(5.0, 15.0),
    length=st.floats(1.0, 12.0),
    back_after=st.floats(0.0, 20.0),
    rate=st.sampled_from([10.0, 20.0, 50.0]),
)
def test_recovery_time_is_exact_to_the_window_resolution(tmp_path_factory, start, length, back_after, rate):
    folder = tmp_path_factory.mktemp("run")
    slis = slis_of(outage_run(folder, fault=(start, start + length), back_after=back_after, rate=rate))
    assert abs(slis["recovery_time_s"] - back_after) <= 1.0 + 1.0 / rate


def test_a_model_that_never_comes_back_has_no_recovery_time(tmp_path):
    slis = slis_of(outage_run(tmp_path / "run", fault=(10.0, 20.0), back_after=100.0))
    assert math.isinf(slis["recovery_time_s"])
    assert slis["faults"][0]["recovery_time_s"] is None


def test_uptime_counts_degraded_answers_as_up_and_reports_their_share(tmp_path):
    variant = Variant(duration=30.0, errors=[(12.0, 13.0)], degraded=[(14.0, 16.0)])
    slis = slis_of(write_run(tmp_path / "run", [variant], phases=PHASES, windows=[WINDOW]))
    after_warmup = 28 * 20
    assert slis["uptime"] == pytest.approx(1 - 20 / after_warmup)
    assert slis["degraded_share"] == pytest.approx(40 / after_warmup)
    assert slis["failure_impact"] == pytest.approx(20 / 200)  # 1 s of errors in a 10 s window at 20/s


def test_warmup_errors_are_ignored(tmp_path):
    variant = Variant(duration=30.0, errors=[(0.0, 2.0)])
    slis = slis_of(write_run(tmp_path / "run", [variant], phases=PHASES, windows=[WINDOW]))
    assert slis["uptime"] == 1.0


def test_fallback_latency_increase_compares_p95_in_faults_with_baseline(tmp_path):
    variant = Variant(duration=30.0, latency=100.0, slow=[(10.0, 20.0, 150.0)])
    slis = slis_of(write_run(tmp_path / "run", [variant], phases=PHASES, windows=[WINDOW]))
    assert slis["fallback_latency_increase"] == pytest.approx(0.5)


def test_degraded_capacity_is_real_answers_per_second_in_faults_over_baseline(tmp_path):
    variant = Variant(duration=30.0, errors=[(10.0, 15.0)], degraded=[(15.0, 17.0)])
    slis = slis_of(write_run(tmp_path / "run", [variant], phases=PHASES, windows=[WINDOW]))
    assert slis["degraded_capacity"] == pytest.approx(0.3)  # 3 of the 10 fault seconds served for real


def test_time_to_detect_comes_from_the_breaker_opening_in_the_audit_trail(tmp_path):
    opened = {
        "t": 10.8,
        "kind": "CircuitStateChanged",
        "model": "model-0/model-0",
        "from": "closed",
        "to": "open",
    }
    variant = Variant(duration=30.0, down=[(10.0, 21.0)], audit=[opened])
    slis = slis_of(write_run(tmp_path / "run", [variant], phases=PHASES, windows=[WINDOW]))
    assert slis["time_to_detect_s"] == pytest.approx(0.8)


def test_a_passthrough_control_never_detects(tmp_path):
    variant = Variant(name="control", mode="passthrough", duration=30.0, errors=[(10.0, 20.0)])
    primary = Variant(duration=30.0)
    slis = slis_of(
        write_run(tmp_path / "run", [primary, variant], phases=PHASES, windows=[WINDOW]), "control"
    )
    assert math.isinf(slis["time_to_detect_s"])


def test_truncated_successes_are_answers_without_a_finish_reason(tmp_path):
    variant = Variant(duration=30.0, truncated=3)
    slis = slis_of(write_run(tmp_path / "run", [variant], phases=PHASES, windows=[WINDOW]))
    assert slis["truncated_successes"] == 3


def test_per_phase_figures(tmp_path):
    variant = Variant(duration=30.0, latency=40.0, slow=[(10.0, 20.0, 80.0)])
    slis = slis_of(write_run(tmp_path / "run", [variant], phases=PHASES, windows=[WINDOW]))
    assert slis["phases"]["baseline"]["p50_ms"] == 40.0
    assert slis["phases"]["faults"]["p99_ms"] == 80.0
    assert slis["phases"]["faults"]["requests"] == 200
    assert slis["phases"]["baseline"]["success_rps"] == pytest.approx(20.0)


def test_a_model_whose_baseline_was_a_probe_or_two_has_no_share_to_recover():
    """Found in `make bench`: a sequential plan's spare answered one health probe in the
    baseline, so "90 % of its baseline share" was a target the gateway rightly never met again."""
    import pandas as pd

    from reports.rundata import FaultWindow, PhasePlan
    from reports.sli import recovery_time

    rows = {}
    for second in range(30):
        rows[second] = {("model-0", "ok"): 40.0, ("model-1", "ok"): 1.0 if second == 3 else 0.0}
    counts = pd.DataFrame.from_dict(rows, orient="index")
    counts.columns = pd.MultiIndex.from_tuples(counts.columns, names=["model", "outcome"])
    plan = PhasePlan(warmup=1.0, baseline_end=5.0, faults_end=13.0, end=30.0)
    window = FaultWindow(0, 5.0, 13.0, ("model-0", "model-1"), "endpoint")
    seconds, basis = recovery_time(counts, plan, window, "model-1", horizon=30.0)
    assert seconds == 0.0 and "no baseline share" in basis
    assert recovery_time(counts, plan, window, "model-0", horizon=30.0)[0] == 0.0  # back at once


def _windows(model_faults: list[tuple[float, float, str]]) -> list[dict]:
    return [
        {"fault": i, "start": start, "end": end, "models": ["model-0"], "kind": kind, "detail": None}
        for i, (start, end, kind) in enumerate(model_faults)
    ]


def _flaps(folder, starts: list[float], out_until: float):
    """model-0 goes down for a second at each of `starts`; the client keeps it out until `out_until`."""
    windows = _windows([(s, s + 1.0, "down") for s in starts])
    phases = {"warmup": 2.0, "baseline": 8.0, "faults": starts[-1] + 1.0 - 10.0, "recovery": 10.0}
    resilient = Variant(duration=starts[-1] + 11.0, down=[(starts[0], out_until)])
    return slis_of(write_run(folder, [resilient], phases=phases, windows=windows))


def test_a_flap_back_too_short_to_meet_counts_as_the_same_outage(tmp_path):
    """Flapping at time-scale 0.5 (CI, 2026-12-02): model-0 up for one second between outages,
    the client that met the first kept it out through the second, and the second read as never
    met. Kept out since an outage of its own that ended under LEAD_IN before, it met this one;
    an outage long after, with no traffic since, it did not."""
    flapping = _flaps(tmp_path / "flap", [10.0, 12.0, 14.0], out_until=16.0)
    assert [row["exercised"] for row in flapping["faults"]] == [True, True, True]
    assert "it met fault 0" in flapping["faults"][1]["exercised_basis"]
    assert flapping["faults_not_exercised"] == []
    apart = _flaps(tmp_path / "apart", [10.0, 18.0], out_until=20.0)
    assert [row["exercised"] for row in apart["faults"]] == [True, False]


def _outages(folder, starts: list[float], down: list[tuple[float, float]], kinds: list[str] | None = None):
    """model-0 faulted for a second at each of `starts`, answering nothing in the `down` spans."""
    kinds = kinds or ["down"] * len(starts)
    windows = _windows([(s, s + 1.0, k) for s, k in zip(starts, kinds, strict=True)])
    duration = max(starts[-1], down[-1][1]) + 6.0
    phases = {
        "warmup": 2.0,
        "baseline": 8.0,
        "faults": starts[-1] + 1.0 - 10.0,
        "recovery": duration - starts[-1] - 1.0,
    }
    resilient = Variant(duration=duration, down=down)
    return slis_of(write_run(folder, [resilient], phases=phases, windows=windows))


def test_a_model_that_flaps_recovers_from_when_it_was_last_back_up(tmp_path):
    """Flapping-model measured here (2026-12-02): between outages the breaker gave model-0
    back a small share (the restoration ramp, as the scenario asks), and the first outage's
    recovery ran on through the two that followed, so the gateway that would not slam a
    flapping model read 8-12 s where it took 4 s after the last outage. While the model is
    down nobody can give it traffic: those seconds are not charged, the ones it was up are."""
    # Back for the last 0.4 s before each next outage: met again, never 90 % of a second's share.
    flapping = _outages(tmp_path / "run", [10.0, 14.0, 18.0], [(10.0, 13.6), (14.0, 17.6), (18.0, 23.0)])
    assert [row["exercised"] for row in flapping["faults"]] == [True, True, True]
    first, second, last = flapping["faults"]
    for row in (first, second, last):
        assert row["recovery_time_s"] == pytest.approx(4.0, abs=1.0)
    assert "until the end of fault 2" in first["recovery_basis"]
    assert "up 3 s at most between" in first["recovery_basis"]
    assert last["recovery_basis"] == "endpoint counts"
    assert flapping["recovery_time_s"] == pytest.approx(4.0, abs=1.0)


@pytest.mark.parametrize("gap", [2.0, 3.0])
def test_a_model_kept_out_through_its_flaps_recovers_from_the_last_and_no_sooner(tmp_path, gap):
    """Kept out through every flap (met again or not: with a gap of LEAD_IN the later flaps
    count as met): the clock still runs to when the model was really back, 35 s after the
    last outage here (over the 30 s target)."""
    starts = [10.0, 11.0 + gap, 12.0 + 2 * gap]
    kept_out = _outages(tmp_path / "run", starts, [(10.0, starts[-1] + 36.0)])
    assert kept_out["recovery_time_s"] == pytest.approx(35.0, abs=1.0)


def test_a_model_up_long_before_its_next_outage_is_charged_for_that_time(tmp_path):
    """Up from 11 s, given back a moment before it went down again at 50 s (so that outage was
    met), back for good 4 s after it: 39 s up without its share, over the 30 s target."""
    apart = _outages(tmp_path / "run", [10.0, 50.0], [(10.0, 49.6), (50.0, 55.0)])
    assert [row["exercised"] for row in apart["faults"]] == [True, True]
    assert apart["faults"][0]["recovery_time_s"] == pytest.approx(39.0, abs=1.0)
    assert apart["recovery_time_s"] == pytest.approx(39.0, abs=1.0)


def test_only_a_model_going_down_again_moves_the_clock(tmp_path):
    """A slow spell later, or an outage after it was back, are faults of their own: the first
    outage's recovery is its own."""
    slow_later = _outages(tmp_path / "slow", [10.0, 20.0], [(10.0, 45.0)], kinds=["down", "latency"])
    assert slow_later["faults"][0]["recovery_time_s"] == pytest.approx(34.0, abs=1.0)
    back_between = _outages(tmp_path / "back", [10.0, 18.0], [(10.0, 14.0), (18.0, 21.0)])
    first, second = back_between["faults"]
    assert (first["recovery_basis"], first["recovery_time_s"]) == (
        "endpoint counts",
        pytest.approx(3.0, abs=1.0),
    )
    assert second["recovery_time_s"] == pytest.approx(2.0, abs=1.0)


@pytest.mark.parametrize(
    ("faults", "back_at", "expected"),
    [
        # Overlapping outages: both end when the later one does.
        ([(10.0, 14.0, "down"), (12.0, 18.0, "down")], 21.0, [3.0, 3.0]),
        # One inside another: the inner one's end does not pull the outer one's clock back.
        ([(10.0, 20.0, "down"), (12.0, 14.0, "down")], 23.0, [3.0, 3.0]),
        # Begun together: the shorter one ends when the longer does.
        ([(10.0, 20.0, "down"), (10.0, 12.0, "down")], 23.0, [3.0, 3.0]),
        # A slow spell inside an outage that began first: the model was down until 20 s.
        ([(10.0, 20.0, "down"), (14.0, 16.0, "latency")], 23.0, [3.0, 3.0]),
    ],
)
def test_a_model_down_in_several_faults_at_once_recovers_from_the_end_of_the_last(
    tmp_path, faults, back_at, expected
):
    phases = {"warmup": 2.0, "baseline": 8.0, "faults": 10.0, "recovery": 10.0}
    resilient = Variant(duration=30.0, down=[(10.0, back_at)])
    slis = slis_of(write_run(tmp_path / "run", [resilient], phases=phases, windows=_windows(faults)))
    assert [row["recovery_time_s"] for row in slis["faults"]] == [pytest.approx(e, abs=1.0) for e in expected]


def _kept(folder, kind: str, variant: Variant, cut: dict[str, float] | None = None) -> bool:
    """model-0 faulted from 10 to 20 s; `cut` scales what each model's endpoint received in
    those seconds (a system that throttled it, or every model at once)."""
    windows = _windows([(10.0, 20.0, kind)])
    run = write_run(folder, [variant], phases=PHASES, windows=windows)
    path = run / variant.name / "endpoint_counts.json"
    counts = json.loads(path.read_text())
    for model, factor in (cut or {}).items():
        for second, outcomes in counts[model]["per_second"].items():
            if 10 <= int(second) < 20:
                outcomes["ok"] = int(outcomes["ok"] * factor)
    path.write_text(json.dumps(counts))
    return slis_of(run, variant.name)["faults"][0]["kept_sending"]


@pytest.mark.parametrize(
    ("kind", "variant", "cut", "expected"),
    [
        # A slow spell the client rode out on model-0: its endpoint got its usual traffic.
        ("latency", Variant(slow=[(10.0, 20.0, 300.0)]), None, True),
        # Moved off model-0 a second into the spell.
        ("latency", Variant(down=[(11.0, 22.0)]), None, False),
        # Held to a trickle (ours holds a rate-limited model for its Retry-After: 0.17 of its
        # traffic on the peers bench) while no other endpoint got more: its share of what the
        # endpoints got is unchanged, as when a fault on every model is met by cutting all.
        ("endpoint", Variant(), {"model-0": 0.15}, False),
        ("endpoint", Variant(), {"model-0": 0.95}, True),
        # 20 requests a second over 10 s: 15 a second is within sampling noise of 20 (LiteLLM,
        # spreading at random, read 0.86 of its usual traffic in latency-spike on 3 December),
        # 13 is not, and half is never usual whatever the noise.
        ("endpoint", Variant(), {"model-0": 0.75}, True),
        ("endpoint", Variant(), {"model-0": 0.65}, False),
        # A model taken down sees no attempt: the endpoint cannot tell, no claim...
        ("down", Variant(), None, False),
        # ...except for the control, which has no policy to take it out.
        ("down", Variant(name="control", mode="passthrough", errors=[(10.0, 20.0)]), None, True),
    ],
)
def test_whether_the_system_kept_sending_is_what_the_endpoint_saw(tmp_path, kind, variant, cut, expected):
    """The scorecard marks a recovery near 0 from a system that never took the model out. The
    audit cannot say so (an external system keeps none here, and ours holds a rate-limited
    model without opening its breaker); the endpoint's counts can, where it sees traffic."""
    assert _kept(tmp_path / "run", kind, variant, cut) is expected


@pytest.mark.parametrize(
    ("usual", "seconds", "baseline", "floor"),
    [
        (1000.0, 20, 20, 900.0),  # plenty of requests: 90 % of the usual count
        (13.3, 6, 10, 13.3 - 3 * (13.3 * (1 / 6 + 1 / 10)) ** 0.5),  # few: sampling noise decides
        (2.0, 3, 10, 1.0),  # very few: never under half
    ],
)
def test_usual_traffic_allows_for_sampling_noise_but_never_half(usual, seconds, baseline, floor):
    assert usual_traffic_floor(usual, seconds, baseline) == pytest.approx(floor)
