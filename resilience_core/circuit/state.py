"""Breaker states and the one table of legal transitions."""

from __future__ import annotations

from enum import StrEnum


class CircuitState(StrEnum):
    """closed: calls flow; open: fail fast; half_open: a few probes; isolated: forced open."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    ISOLATED = "isolated"


CLOSED, OPEN, HALF_OPEN, ISOLATED = (
    CircuitState.CLOSED,
    CircuitState.OPEN,
    CircuitState.HALF_OPEN,
    CircuitState.ISOLATED,
)
"""The members as module names, for the per-call paths: on 3.11 `CircuitState.CLOSED` goes
through the enum's metaclass, which costs more than the breaker's own check (docs/benchmarks.md)."""

TRANSITIONS: dict[CircuitState, frozenset[CircuitState]] = {
    CircuitState.CLOSED: frozenset({CircuitState.OPEN, CircuitState.ISOLATED}),
    CircuitState.OPEN: frozenset({CircuitState.HALF_OPEN, CircuitState.ISOLATED, CircuitState.CLOSED}),
    CircuitState.HALF_OPEN: frozenset({CircuitState.CLOSED, CircuitState.OPEN, CircuitState.ISOLATED}),
    CircuitState.ISOLATED: frozenset({CircuitState.CLOSED}),
}
"""Every legal move. open -> closed and isolated -> closed are manual restores only."""


class IllegalTransitionError(RuntimeError):
    """A transition not listed in TRANSITIONS was attempted: a bug, never a runtime condition."""


def check_transition(source: CircuitState, target: CircuitState) -> None:
    """Raise unless `source -> target` is in the table."""
    if target not in TRANSITIONS[source]:
        raise IllegalTransitionError(f"{source} -> {target} is not a legal transition")
