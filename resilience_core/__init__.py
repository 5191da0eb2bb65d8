"""resilience_core: deadlines, retries, breakers, bulkheads, fallback, health, metrics,
recovery, manual controls and an audit trail for calling AI model endpoints from asyncio."""

from .admin import AdminControls, RecoveryService, UnknownModelError
from .audit import AUDITED, AuditTrail, read_audit
from .backoff import (
    Stop,
    Wait,
    constant,
    exponential,
    jitter,
    stop_after_attempt,
    stop_after_delay,
)
from .bulkhead import Bulkhead, BulkheadConfig
from .circuit import (
    TRANSITIONS,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerPolicy,
    CircuitState,
    CountWindow,
    IllegalTransitionError,
    TimeWindow,
)
from .clock import Clock, LoopClock
from .context import Call, Context
from .deadline import Deadline, Timeout
from .degradation import CachedAnswer, Degrade, DegradedSource, StaticAnswer
from .errors import (
    AllModelsFailedError,
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
    RestorationStepChanged,
    RetryBudgetExhausted,
    RetryScheduled,
    WeightChanged,
)
from .fallback import Fallback, ParallelFallback, SequentialFallback, WeightedFallback
from .health import HealthChecker, HealthStatus, HealthThresholds
from .metrics import MetricsCollector, MetricsPolicy, MetricsSnapshot
from .outcome import Outcome, Settleable
from .policy import Pipeline, Policy, invoke
from .predicates import NON_RETRYABLE, TRANSIENT, Predicate, failed, on, on_code, on_status
from .recovery import AutoRecovery, Restoration, RestorationConfig
from .retry import Retry, RetryBudget, RetryConfig, RetryManager
from .router import ModelRouter, ModelSpec, RoutedAnswer, RouterConfig
from .selection import Hedged, Plan, Sequential, Weighted

__version__ = "0.1.0"

__all__ = [
    "AUDITED",
    "NON_RETRYABLE",
    "TRANSIENT",
    "TRANSITIONS",
    "AdminAction",
    "AdminControls",
    "AllModelsFailedError",
    "AttemptTimeoutError",
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
    "Clock",
    "constant",
    "Context",
    "CountWindow",
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
    "HealthChanged",
    "HealthChecker",
    "HealthStatus",
    "HealthThresholds",
    "Hedged",
    "HedgeStarted",
    "IllegalTransitionError",
    "invoke",
    "jitter",
    "LoopClock",
    "MetricsCollector",
    "MetricsPolicy",
    "MetricsSnapshot",
    "ModelCallError",
    "ModelRouter",
    "ModelSpec",
    "NoCandidateError",
    "on",
    "on_code",
    "on_status",
    "Outcome",
    "ParallelFallback",
    "Pipeline",
    "Plan",
    "Policy",
    "Predicate",
    "read_audit",
    "RecoveryService",
    "RejectedError",
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
    "StaticAnswer",
    "Stop",
    "stop_after_attempt",
    "stop_after_delay",
    "Timeout",
    "TimeWindow",
    "UnknownModelError",
    "Wait",
    "WeightChanged",
    "Weighted",
    "WeightedFallback",
    "__version__",
]
