"""Who may use the admin API: one bearer token, compared in constant time, refusals counted."""

from __future__ import annotations

import hmac
import logging
import os
import secrets

from aiohttp import web

TOKEN_VARIABLE = "CHAOS_ADMIN_TOKEN"

log = logging.getLogger("harness.gateway.admin")


def resolve_token(configured: str | None = None, *, generate: bool = False) -> str | None:
    """The admin token in force: CHAOS_ADMIN_TOKEN wins over a configured one; with `generate`,
    a fresh random one when neither is set (a run's gateways and its runner must agree)."""
    token = os.environ.get(TOKEN_VARIABLE) or configured
    if token is None and generate:
        token = secrets.token_urlsafe(16)
    return token


def shown_token(token: str) -> str:
    """How to print the token: its variable's name when it came from there, else itself."""
    return f"${TOKEN_VARIABLE}" if os.environ.get(TOKEN_VARIABLE) else token


class AdminAuth:
    """Checks requests against the token; with no token at all, refuses everything."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.refused = 0

    def authorized(self, request: web.Request, *, allow_query: bool = False) -> bool:
        """The bearer token, compared in constant time; `allow_query` also takes `?token=`
        (only the event stream: EventSource cannot send headers)."""
        supplied = request.headers.get("Authorization", "")
        if allow_query and not supplied and "token" in request.query:
            supplied = f"Bearer {request.query['token']}"
        expected = f"Bearer {self.token}" if self.token else None
        ok = expected is not None and hmac.compare_digest(supplied.encode(), expected.encode())
        if not ok:
            self.refused += 1
            log.warning(
                "admin request refused: %s %s from %s (bad or missing token)",
                request.method,
                request.path,
                request.remote,
            )
        return ok
