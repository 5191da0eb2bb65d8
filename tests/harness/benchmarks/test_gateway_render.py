"""The gateway bench's page: rendered from figures, so a 40-minute `make bench` does not die at
its last step, and each change it publishes is the paired one."""

from __future__ import annotations

from typing import Any

import pytest

from harness.benchmarks.gateway_overhead import _paired_change, render, summarise


def _figures(p50: float, cpu: float) -> dict[str, float]:
    """A round's figures; its p50 measured alone reads 1 ms lower, as with no other load."""
    return {
        "p50_ms": p50,
        "alone_p50_ms": p50 - 1.0,
        "p99_ms": 2 * p50,
        "cpu_s_per_1000": cpu,
        "rate": 300.0,
        "errors": 0,
    }


def _run(
    models: int,
    ours: list[dict[str, float]],
    theirs: list[dict[str, float]],
    label: str = "resilient",
    alone: tuple[list[dict[str, float]], list[dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """`alone`: the rounds that loaded each gateway on its own (the same as `ours`, `theirs`
    unless given)."""
    ours_alone, theirs_alone = alone or (ours, theirs)
    return {
        "per_mode": {label: ours[0], "passthrough": theirs[0]},
        "paired_cpu_change": _paired_change(ours, theirs, "cpu_s_per_1000"),
        "paired_p50_change": _paired_change(ours_alone, theirs_alone, "p50_ms"),
        "paired_shared_p50_change": _paired_change(ours, theirs, "p50_ms"),
        "errors": {"resilient": 0, "passthrough": 0},
        "toxiproxy_hop": {"direct_p50_ms": 30.0, "proxied_p50_ms": 30.1},
        "models": models,
    }


def test_changes_are_the_median_of_paired_rounds():
    # Rounds +2.5 %, 0 % and +1 %: their median is +1 %, while the ratio of each side's median
    # (41.0 against 40.0) would read +2.5 %.
    ours = [_figures(41.0, 1.03), _figures(50.0, 2.06), _figures(30.3, 1.02)]
    theirs = [_figures(40.0, 1.00), _figures(50.0, 2.00), _figures(30.0, 1.00)]
    change = _paired_change(ours, theirs, "p50_ms")
    assert change["median"] == pytest.approx(0.01)
    assert len(change["rounds"]) == 3


def test_the_page_shows_paired_p50_and_cpu_changes_and_the_a_a_noise():
    ours = [_figures(40.4, 1.03), _figures(40.2, 1.05)]
    theirs = [_figures(40.0, 1.00), _figures(40.0, 1.00)]
    data = {
        "rounds": 2,
        "rate": 300.0,
        "duration": 5.0,
        "overhead": [_run(1, ours, theirs), _run(5, ours, theirs)],
        "a_a": _run(1, theirs, theirs),
        "routing": _run(5, ours, theirs, "passthrough on model-0"),
        "instructions": [
            {
                "per_request": {"passthrough": 900_000.0, "resilient": 945_000.0},
                "upstream_per_request": {"passthrough": 1.0, "resilient": 1.02},
                "models": 5,
                "requests": 1200,
            }
        ],
        "scale": [],
    }
    page = render(data, "make bench")
    # Two rounds cannot bound a median (a 95 % interval needs six): open, so never a pass.
    assert "| 1 | **resilient vs passthrough** | **+0.8% (95 % interval open to open), inconclusive" in page
    assert "**+4.0% (95 % interval open to open), inconclusive against <= 5%** |" in page
    assert "reads CPU +0.0% (95 % interval open to open), p50 alone +0.0%" in page
    assert "- 5 models: passthrough 900 k, resilient 945 k, **+5.0%** (at least 1200 requests each; " in page
    assert "upstream calls per request 1.000 and 1.020)" in page
    assert "the other round-robin): CPU +4.0% (95 % interval open to open), p50 alone +0.8%" in page


def test_each_change_is_judged_on_its_interval_against_its_target():
    """Twenty rounds: the median's interval is the 6th to the 15th smallest change, and the
    verdict is the reports' rule (pass inside the target, fail outside, else inconclusive)."""
    base = [_figures(40.0, 1.00)] * 20
    within = [_figures(40.0 * (1 + i / 10_000), 1.0 + i / 1000) for i in range(20)]  # +0..0.19 %, +0..1.9 %
    beyond = [_figures(40.0 * (1.02 + i / 1000), 1.06 + i / 1000) for i in range(20)]  # +2..3.9 %, +6..7.9 %
    page = render(
        {
            "rounds": 20,
            "rate": 300.0,
            "duration": 5.0,
            "overhead": [_run(1, within, base), _run(5, beyond, base)],
            "scale": [],
        },
        "make bench",
    )
    assert "**+0.1% (95 % interval +0.0% to +0.1%), pass against <= 1%**" in page
    assert "**+0.9% (95 % interval +0.5% to +1.4%), pass against <= 5%**" in page  # 6th, 15th of 20
    assert "**+2.9% (95 % interval +2.5% to +3.4%), fail against <= 1%**" in page
    assert "**+7.0% (95 % interval +6.5% to +7.4%), fail against <= 5%**" in page


def test_the_p50_judged_is_the_one_measured_alone_and_the_shared_one_is_shown_beside_it():
    """Loaded at once, each gateway waits behind the other for the cores: that p50 is shown,
    the one measured with each gateway alone is judged."""
    base = [_figures(40.0, 1.00)] * 20
    shared = [_figures(40.0 * 1.03, 1.02)] * 20  # +3 % p50 with both loaded
    alone = ([_figures(40.0 * 1.002, 1.02)] * 20, base)  # +0.2 % on its own
    page = render(
        {
            "rounds": 20,
            "rate": 300.0,
            "duration": 5.0,
            "overhead": [_run(1, shared, base, alone=alone)],
            "scale": [],
        },
        "make bench",
    )
    assert "| **+0.2% (95 % interval +0.2% to +0.2%), pass against <= 1%** | +3.0% (95 % interval" in page


def test_the_judged_p50_comes_from_the_rounds_alone_and_cpu_from_the_rounds_both_loaded():
    both = {"resilient": [_figures(41.2, 1.04)] * 6, "passthrough": [_figures(40.0, 1.00)] * 6}
    alone = {
        "resilient": [{**_figures(40.1, 9.0), "errors": 1}] * 6,
        "passthrough": [_figures(40.0, 9.0)] * 6,
    }
    summary = summarise(both, alone, ("resilient", "passthrough"))
    assert summary["paired_p50_change"]["median"] == pytest.approx(0.0025)
    assert summary["paired_shared_p50_change"]["median"] == pytest.approx(0.03)
    assert summary["paired_cpu_change"]["median"] == pytest.approx(0.04)
    assert summary["per_mode"]["resilient"]["alone_p50_ms"] == 40.1
    assert summary["per_mode"]["resilient"]["p50_ms"] == 41.2
    assert summary["errors"] == {"resilient": 6, "passthrough": 0}
