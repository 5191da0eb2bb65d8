"""OpenAI-style error bodies, and how a routing failure becomes one. The one definition the
gateway's chat and admin routes share: a clear message, never upstream URLs, keys or tracebacks."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from harness.gateway.upstream import ProviderRejected
from resilience_core import (
    AttemptTimeoutError,
    DeadlineExceededError,
    ModelCallError,
    RejectedError,
)


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_error(
    status: int, message: str, kind: str, code: str | None = None, param: str | None = None
) -> web.Response:
    """An OpenAI-style error response with `status`."""
    return web.json_response(error_body(message, kind, code, param), status=status)


def routing_error(error: BaseException | None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) the client is told when routing ended in `error`."""
    if isinstance(error, ModelCallError) and error.status == 429:
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        body = error_body("every model is rate limited; retry later", "rate_limit_error", error.code)
        return 429, body, headers
    if isinstance(error, ProviderRejected):  # the provider's own words, scrubbed and bounded
        return (
            error.status or 400,
            error_body(error.detail, "invalid_request_error", error.code, error.param),
            {},
        )
    if isinstance(error, ModelCallError) and error.status is not None and error.status < 500:
        message = f"upstream rejected the request ({error.status})"
        return error.status, error_body(message, "invalid_request_error", error.code), {}
    timed_out = isinstance(error, ModelCallError) and error.status == 504
    if timed_out or isinstance(error, DeadlineExceededError | AttemptTimeoutError | TimeoutError):
        return 504, error_body("the model did not answer in time", "timeout"), {}
    if isinstance(error, RejectedError):
        return 503, error_body("no model is available right now", "service_unavailable"), {}
    return 502, error_body("the model failed to answer", "upstream_error"), {}


def error_response(error: BaseException | None) -> web.Response:
    """What the client is told when routing ended in `error`, as a response."""
    status, body, headers = routing_error(error)
    return web.json_response(body, status=status, headers=headers)
