"""Errors the core raises or reports, and how a transport describes an upstream failure.

ResilienceError
├── RejectedError               the call never reached the model
│   ├── CircuitOpenError        breaker open, isolated, or model drained
│   ├── BulkheadFullError       concurrency limit and queue both full
│   └── NoCandidateError        every model is excluded (isolated, drained, zero weight)
├── AttemptTimeoutError         one attempt exceeded its own timeout       (also TimeoutError)
├── DeadlineExceededError       the request-level budget ran out            (also TimeoutError)
├── AllModelsFailedError        every candidate failed; carries each failure
└── ModelCallError              an upstream answered with an error (status, code, Retry-After)
    └── AnswerFailedError       an answer that had started (a stream) failed before its end
"""

from __future__ import annotations


class ResilienceError(Exception):
    """Base of every error raised by resilience_core."""


class RejectedError(ResilienceError):
    """The call was refused before it reached the model."""

    def __init__(self, message: str, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class CircuitOpenError(RejectedError):
    """The model's circuit is open, isolated or drained: failing fast instead of calling it."""


class BulkheadFullError(RejectedError):
    """The model's concurrency limit and its wait queue are both full."""


class NoCandidateError(RejectedError):
    """No model in the pool may take traffic right now."""


class AttemptTimeoutError(ResilienceError, TimeoutError):
    """A single attempt ran past its per-attempt timeout."""


class DeadlineExceededError(ResilienceError, TimeoutError):
    """The request-level deadline expired; nothing more will be tried."""


class AllModelsFailedError(ResilienceError):
    """Every candidate failed. `failures` maps model name to its last error."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        summary = ", ".join(f"{m}: {type(e).__name__}" for m, e in failures.items())
        super().__init__(f"all models failed ({summary})" if failures else "no model was tried")
        self.failures = failures


class ModelCallError(ResilienceError):
    """An upstream answered with an error.

    Transports raise this so that classification (retryable or not, Retry-After) does not
    depend on any HTTP library. `code` carries provider error codes such as
    ``context_length_exceeded`` or ``content_filter``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class AnswerFailedError(ModelCallError):
    """A value known only later (a started stream, see `Settleable`) settled as failed.

    The guards hear of it as this error, status 502, so they judge it as any upstream failure;
    a guard with a failure predicate of its own counts it only if that predicate matches it.
    """

    def __init__(self, model: str | None) -> None:
        super().__init__(f"the answer of model {model} failed after it had started", status=502)
