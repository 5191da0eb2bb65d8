"""The gateway's admin routes: manual model controls, the degraded-mode switch, run status,
state, its event stream and the OpenAPI document. Every route checks the bearer token first,
so a refused request changes nothing; every change goes through the audit trail."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.gateway.admin import actions
from harness.gateway.admin.feed import stream, to_json
from harness.gateway.admin.openapi import OPENAPI
from harness.gateway.admin.target import AdminTarget
from harness.gateway.http.errors import openai_error

MAX_REASON = 500
MAX_WHO = 100
MAX_FAULTS = 1000
DEFAULT_WHO = "admin"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadField(Exception):
    """A request body field is missing or wrong; the 400 names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def error(status: int, message: str, kind: str, param: str | None = None) -> web.Response:
    """An OpenAI-style error that names the offending field, if any."""
    return openai_error(status, message, kind, param=param)


def refused() -> web.Response:
    response = error(401, "missing or invalid admin token", "authentication_error")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadField("body", "the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadField("body", "the request body must be a JSON object")
    return body


def text(body: dict[str, Any], field: str, limit: int, default: str | None = None) -> str:
    """A non-blank string field of at most `limit` characters (or `default` when absent or blank)."""
    value = body.get(field)
    blank = value is None or (isinstance(value, str) and not value.strip())
    if blank and default is not None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise BadField(field, f"'{field}' is required: a non-blank string")
    if len(value) > limit:
        raise BadField(field, f"'{field}' is longer than {limit} characters")
    return value.strip()


def number(body: dict[str, Any], field: str) -> float:
    """A finite number >= 0."""
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise BadField(field, f"'{field}' is required: a number >= 0")
    return float(value)


def run_status(body: dict[str, Any]) -> dict[str, Any]:
    """The validated run status, with only the fields the dashboard knows."""
    faults = body.get("faults", [])
    if not isinstance(faults, list) or len(faults) > MAX_FAULTS:
        raise BadField("faults", f"'faults' must be a list of at most {MAX_FAULTS} objects")
    checked = []
    for index, fault in enumerate(faults):
        if not isinstance(fault, dict):
            raise BadField(f"faults[{index}]", f"'faults[{index}]' must be an object")
        number_ok = isinstance(fault.get("fault"), int) and not isinstance(fault.get("fault"), bool)
        if not number_ok:
            raise BadField(f"faults[{index}].fault", f"'faults[{index}].fault' must be an integer")
        checked.append(
            {
                "model": text(fault, "model", MAX_WHO),
                "kind": text(fault, "kind", MAX_WHO),
                "fault": fault["fault"],
            }
        )
    return {
        "scenario": text(body, "scenario", MAX_REASON),
        "variant": text(body, "variant", MAX_WHO, default=""),
        "phase": text(body, "phase", MAX_WHO),
        "elapsed": number(body, "elapsed"),
        "duration": number(body, "duration"),
        "faults": checked,
    }


def guarded(gateway: AdminTarget, handler: Handler, *, query_token: bool = False) -> Handler:
    """`handler` behind the token check, with a bad field turned into a 400 that names it."""

    async def check(request: web.Request) -> web.StreamResponse:
        if not gateway.auth.authorized(request, allow_query=query_token):
            return refused()
        try:
            return await handler(request)
        except BadField as exc:
            return error(400, str(exc), "invalid_request_error", exc.field)

    return check


def add_admin_routes(app: web.Application, gateway: AdminTarget) -> None:
    """Register /admin/* on `app`, every route behind the admin token."""

    async def model_action(request: web.Request) -> web.Response:
        body = await json_object(request)
        name, action = request.match_info["name"], request.match_info["action"]
        why = text(body, "reason", MAX_REASON)
        who = text(body, "who", MAX_WHO, default=DEFAULT_WHO)
        weight = number(body, "weight") if action == "weight" else None
        try:
            found = actions.model_action(gateway, name, action, who, why, weight)
        except actions.UnknownTarget as exc:
            return error(404, str(exc), "invalid_request_error", "name")
        applied = [{"group": group, "model": label} for group, label in found]
        return web.json_response({"ok": True, "action": action, "model": name, "applied": applied})

    async def degraded(request: web.Request) -> web.Response:
        body = await json_object(request)
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise BadField("enabled", "'enabled' is required: true or false")
        why = text(body, "reason", MAX_REASON)
        who = text(body, "who", MAX_WHO, default=DEFAULT_WHO)
        switched = actions.set_degraded(gateway, enabled, who, why)
        return web.json_response({"ok": True, "degraded": switched.to_dict()})

    async def report_run(request: web.Request) -> web.Response:
        gateway.operator.set_run_status(run_status(await json_object(request)))
        gateway.feed.poke()
        return web.json_response({"ok": True})

    async def state(request: web.Request) -> web.Response:
        return web.json_response(gateway.state(), dumps=to_json)

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream(request, gateway.feed)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    actions_route = "/admin/models/{name:.+}/{action:isolate|drain|restore|weight}"
    app.router.add_post(actions_route, guarded(gateway, model_action))
    app.router.add_post("/admin/degraded", guarded(gateway, degraded))
    app.router.add_post("/admin/run-status", guarded(gateway, report_run))
    app.router.add_get("/admin/state", guarded(gateway, state))
    app.router.add_get("/admin/events", guarded(gateway, events, query_token=True))
    app.router.add_get("/admin/openapi.json", guarded(gateway, openapi))

    async def end_streams(app: web.Application) -> None:
        await gateway.feed.close()

    app.on_shutdown.append(end_streams)
