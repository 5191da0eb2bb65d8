"""What every request must satisfy before a route sees it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from harness.gateway.http.errors import openai_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_bodies_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A POST with a body must say it is JSON. A page on any origin may send a browser's "simple"
    request (text/plain, no CORS preflight) to a gateway on localhost, and each would spend the
    operator's model budget; a JSON body needs a preflight, which this gateway never grants."""
    if request.method == "POST" and request.body_exists and request.content_type != "application/json":
        return openai_error(
            415, "Content-Type must be application/json", "invalid_request_error", param="Content-Type"
        )
    return await handler(request)
