"""resilience_core: deadlines, retries, breakers, bulkheads, fallback, health, metrics,
recovery, manual controls and an audit trail for calling AI model endpoints from asyncio."""

from . import _compiled as _compiled  # first: it chooses the compiled or the source hot path on import

# isort: split

from .admin import AdminControls, UnknownModelError
from .audit import AUDITED, AuditTrail, audit_record, read_audit
from .availability import RATE_LIMITED_HOLD, SLOW_HOLD, RateLimitHold, SlowFirstAnswer
from .backoff import (
    Stop,
    Wait,
    constant,
    exponential,
    jitter,
    stop_after_attempt,
    stop_after_delay,
)
from .bip03 import ParallelFallback, RecoveryService, RetryManager, SequentialFallback, WeightedFallback
from .bulkhead import Bulkhead, BulkheadConfig
from .circuit import (
    TRANSITIONS,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitState,
    IllegalTransitionError,
)
from .clients import openai_chat
from .clock import Clock, LoopClock
from .context import Call, Context
from .deadline import Deadline, Timeout
from .degradation import CachedAnswer, Degrade, DegradedSource, StaticAnswer
from .errors import (
    AllModelsFailedError,
    AnswerFailedError,
    AttemptTimeoutError,
    BulkheadFullError,
    CircuitOpenError,
    DeadlineExceededError,
    ModelCallError,
    NoCandidateError,
    RejectedError,
    ResilienceError,
)
from .events import (
    AdminAction,
    BulkheadRejected,
    CircuitStateChanged,
    DegradedAnswerServed,
    Event,
    EventBus,
    FallbackUsed,
    HealthChanged,
    HedgeStarted,
    ModelHeld,
    RestorationStepChanged,
    RetryBudgetExhausted,
    RetryScheduled,
    WeightChanged,
)
from .fallback import Fallback
from .health import HealthChecker, HealthStatus, HealthThresholds
from .metrics import MetricsCollector, MetricsPolicy, MetricsSnapshot
from .outcome import Outcome, Settleable
from .policy import Guard, Next, Pipeline, Policy, Repeater
from .predicates import (
    CLASSES,
    NON_RETRYABLE,
    RATE_LIMITED,
    TRANSIENT,
    Predicate,
    classes,
    failed,
    on,
    on_code,
    on_status,
    transport,
)
from .recovery import AutoRecovery, Restoration, RestorationConfig
from .retry import Retry, RetryBudget, RetryConfig
from .router import ModelRouter, ModelSpec, RoutedAnswer, RouterConfig
from .selection import Hedged, Plan, Sequential, Weighted

__version__ = "0.1.0"


def compiled() -> bool:
    """Whether this process runs the hot path compiled (`make compile`) or from its Python
    source: the figures in docs/benchmarks/ say which they measured (`resilience_core/
    _compiled.py` says why and how it is chosen)."""
    return _compiled.running_compiled()


__all__ = [
    "AUDITED",
    "CLASSES",
    "NON_RETRYABLE",
    "RATE_LIMITED",
    "RATE_LIMITED_HOLD",
    "SLOW_HOLD",
    "TRANSIENT",
    "TRANSITIONS",
    "AdminAction",
    "AdminControls",
    "AllModelsFailedError",
    "AnswerFailedError",
    "AttemptTimeoutError",
    "audit_record",
    "AuditTrail",
    "AutoRecovery",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFullError",
    "BulkheadRejected",
    "CachedAnswer",
    "Call",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStateChanged",
    "classes",
    "Clock",
    "compiled",
    "constant",
    "Context",
    "Deadline",
    "DeadlineExceededError",
    "Degrade",
    "DegradedAnswerServed",
    "DegradedSource",
    "Event",
    "EventBus",
    "exponential",
    "failed",
    "Fallback",
    "FallbackUsed",
    "Guard",
    "HealthChanged",
    "HealthChecker",
    "HealthStatus",
    "HealthThresholds",
    "Hedged",
    "HedgeStarted",
    "IllegalTransitionError",
    "jitter",
    "LoopClock",
    "MetricsCollector",
    "MetricsPolicy",
    "MetricsSnapshot",
    "ModelCallError",
    "ModelHeld",
    "ModelRouter",
    "ModelSpec",
    "Next",
    "NoCandidateError",
    "on",
    "on_code",
    "on_status",
    "openai_chat",
    "Outcome",
    "ParallelFallback",
    "Pipeline",
    "Plan",
    "Policy",
    "Predicate",
    "RateLimitHold",
    "read_audit",
    "RecoveryService",
    "RejectedError",
    "Repeater",
    "ResilienceError",
    "Restoration",
    "RestorationConfig",
    "RestorationStepChanged",
    "Retry",
    "RetryBudget",
    "RetryBudgetExhausted",
    "RetryConfig",
    "RetryManager",
    "RetryScheduled",
    "RoutedAnswer",
    "RouterConfig",
    "Sequential",
    "SequentialFallback",
    "Settleable",
    "SlowFirstAnswer",
    "StaticAnswer",
    "Stop",
    "stop_after_attempt",
    "stop_after_delay",
    "Timeout",
    "transport",
    "UnknownModelError",
    "Wait",
    "WeightChanged",
    "Weighted",
    "WeightedFallback",
    "__version__",
]
