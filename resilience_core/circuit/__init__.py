"""Circuit breaker: states, windows, the state machine and its policy."""

from .breaker import NO_PERMIT, CircuitBreaker, CircuitBreakerConfig
from .policy import CircuitBreakerPolicy
from .state import TRANSITIONS, CircuitState, IllegalTransitionError
from .window import CountWindow, Snapshot, TimeWindow

__all__ = [
    "NO_PERMIT",
    "TRANSITIONS",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerPolicy",
    "CircuitState",
    "CountWindow",
    "IllegalTransitionError",
    "Snapshot",
    "TimeWindow",
]
