"""The names the BIP-03 specification gives its components, in one place.

Five are the core's own classes under the spec's names (`HealthChecker`, `MetricsCollector`,
`CircuitBreaker`, `AutoRecovery` are defined where they work); the rest are spelled here: the
spec's retry manager and recovery service are the core's `Retry` and `AdminControls`, and its
three fallbacks are the one `Fallback` with a selection plan each.
"""

from __future__ import annotations

import math

from .admin import AdminControls
from .fallback import FINAL, CandidateSource, Fallback
from .predicates import Predicate
from .retry import Retry
from .selection import Hedged, Sequential, Weighted

RetryManager = Retry
"""The BIP-03 name for the retry policy."""

RecoveryService = AdminControls
"""The BIP-03 name for manual recovery controls."""


class SequentialFallback(Fallback):
    """BIP-03's sequential fallback: priority order, one at a time."""

    def __init__(self, candidates: CandidateSource, *, final: Predicate = FINAL) -> None:
        super().__init__(candidates, Sequential(), final=final)


class ParallelFallback(Fallback):
    """BIP-03's parallel fallback: race candidates, starting one more every `delay` seconds."""

    def __init__(self, candidates: CandidateSource, delay: float = 0.0, *, final: Predicate = FINAL):
        super().__init__(candidates, Hedged(delay), final=final)


class WeightedFallback(Fallback):
    """BIP-03's weighted fallback: order drawn from live weights."""

    def __init__(
        self,
        candidates: CandidateSource,
        *,
        hedge_delay: float = math.inf,
        final: Predicate = FINAL,
    ) -> None:
        super().__init__(candidates, Weighted(hedge_delay), final=final)
