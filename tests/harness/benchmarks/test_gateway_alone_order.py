"""The gateway bench's alone runs: how many a round and in which order. Stacks, gateways and
load generators are stand-ins here (the bench itself runs the real ones for ~40 minutes); what
is checked is the schedule that the p50's precision rests on."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.benchmarks import gateway_overhead
from harness.benchmarks.gateway_overhead import ALONE_PAIRS, overhead


@dataclass
class _Stack:
    models: list[str] = field(default_factory=lambda: ["model-0"])
    proxy_urls: dict[str, str] = field(default_factory=lambda: {"model-0": "proxy"})
    endpoint_urls: dict[str, str] = field(default_factory=lambda: {"model-0": "endpoint"})

    def stop(self) -> None:
        pass


@dataclass
class _Gateway:
    url: str
    pid: int = 0

    def stop(self) -> None:
        pass


def _figures(url: str) -> dict[str, float]:
    # Each gateway reads a p50 of its own, so the pairing of the changes is visible.
    p50 = {"resilient": 30.3, "passthrough": 30.0}.get(url, 30.0)
    return {"p50_ms": p50, "p99_ms": 40.0, "rate": 300.0, "requests": 1500, "errors": 0}


def test_each_round_loads_each_gateway_alone_twice_in_mirrored_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    alone: list[str] = []
    shared: list[str] = []

    def load(url: str, *, rate: float = 0.0, duration: float = 5.0, **_: Any) -> dict[str, float]:
        if duration == 5.0 and url in ("resilient", "passthrough"):
            alone.append(url)
        return _figures(url)

    def start_load(url: str, **_: Any) -> str:
        shared.append(url)
        return url

    monkeypatch.setattr(gateway_overhead, "start_stack", lambda *_: _Stack())
    monkeypatch.setattr(gateway_overhead, "gateway_config", lambda _stack, mode: mode)
    started = staticmethod(lambda mode, *_: _Gateway(mode))
    monkeypatch.setattr(gateway_overhead.GatewayProcess, "start", started)
    clock = itertools.count()
    monkeypatch.setattr(gateway_overhead, "cpu_seconds", lambda _pid: float(next(clock)))
    monkeypatch.setattr(gateway_overhead, "load", load)
    monkeypatch.setattr(gateway_overhead, "start_load", start_load)
    monkeypatch.setattr(gateway_overhead, "load_figures", lambda url, _timeout: _figures(url))

    run = overhead(tmp_path, rounds=4, rate=300.0, duration=5.0, models=1)

    assert ALONE_PAIRS == 2
    assert len(shared) == 2 * 4
    assert len(alone) == 2 * ALONE_PAIRS * 4
    for start in range(0, len(alone), 2 * ALONE_PAIRS):
        first, second, third, fourth = alone[start : start + 4]
        assert {first, second} == {"resilient", "passthrough"}
        assert (third, fourth) == (second, first)  # A B B A: a linear drift hits both alike
    changes = run["paired_p50_change"]["rounds"]
    assert len(changes) == ALONE_PAIRS * 4
    assert changes == pytest.approx([0.01] * len(changes))  # resilient against passthrough each time
