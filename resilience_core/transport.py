"""Connection failures and timeouts of the HTTP clients people wrap (openai, anthropic, httpx,
aiohttp), recognised by class name so the core imports none of them.

`openai.APIConnectionError` is no `ConnectionError` and `openai.APITimeoutError` no
`TimeoutError`: matched by type alone, a dead model behind `AsyncOpenAI` never tripped its
breaker and was never failed over as "refused". These clients chain the socket error they wrap
(`raise ... from exc`), so a refused connection is told apart by its cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

TransportFailure = Literal["timeout", "refused", "connection"]

_FAMILIES = frozenset({"openai", "anthropic", "httpx", "httpx2", "httpcore", "httpcore2", "aiohttp"})
_TIMEOUTS = frozenset(
    {
        "APITimeoutError",
        "TimeoutException",
        "ServerTimeoutError",
        "ConnectionTimeoutError",
        "SocketTimeoutError",
    }
)
_CONNECTIONS = frozenset(
    {"APIConnectionError", "NetworkError", "RemoteProtocolError", "ProxyError", "ClientConnectionError"}
)
_CHAIN_LIMIT = 8
"""Causes followed at most: the clients wrap two or three levels deep."""


def transport_failure(error: BaseException | None) -> TransportFailure | None:
    """How a foreign client's transport error failed, or None for anything else (builtin errors
    included: the predicates match those by type)."""
    if error is None:
        return None
    kind: TransportFailure | None = None
    for cls in type(error).__mro__:
        if cls.__module__.partition(".")[0] not in _FAMILIES:
            continue
        if cls.__name__ in _TIMEOUTS:
            kind = "timeout"
            break
        if cls.__name__ in _CONNECTIONS:
            kind = "connection"
            break
    if kind == "connection" and any(isinstance(cause, ConnectionRefusedError) for cause in _causes(error)):
        return "refused"
    if kind == "connection" and any(isinstance(cause, TimeoutError) for cause in _causes(error)):
        return "timeout"
    return kind


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen = 0
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    while cause is not None and seen < _CHAIN_LIMIT:
        yield cause
        seen += 1
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
