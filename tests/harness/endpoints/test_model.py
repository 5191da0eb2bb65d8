"""The simulated endpoints' latency model: jittered within its bounds, reproducible per seed."""

from __future__ import annotations

import random

import pytest

from harness.endpoints.model import LatencyModel


def test_token_rate_varies_within_its_jitter_and_repeats_for_a_seed():
    model = LatencyModel(tokens_per_second=100.0, token_rate_jitter=0.2)
    draws = [model.per_token(random.Random(7)) for _ in range(3)]
    assert len(set(draws)) == 1, "the same seed gives the same draw"
    rng = random.Random(1)
    rates = [1.0 / model.per_token(rng) for _ in range(2000)]
    assert min(rates) >= 80.0 - 1e-9 and max(rates) <= 120.0 + 1e-9
    assert max(rates) - min(rates) > 30.0, "the jitter is really applied"


def test_a_faults_token_rate_is_exact():
    assert LatencyModel(token_rate_jitter=0.5).per_token(
        random.Random(1), rate_override=25.0
    ) == pytest.approx(0.04)


def test_first_token_delay_stays_within_its_jitter():
    model = LatencyModel(first_token=0.05, first_token_jitter=0.01)
    rng = random.Random(3)
    delays = [model.first_token_delay(rng) for _ in range(1000)]
    assert min(delays) >= 0.04 and max(delays) <= 0.06
