"""A hand-written OpenAPI 3 description of the gateway's admin endpoints, served at
`GET /admin/openapi.json` so operators and tools can see the contract without reading code."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
_REFUSED = {"$ref": "#/components/responses/Refused"}


def _action(summary: str, body: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A POST that changes something: JSON body, audited, 400/401/404 on refusal."""
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            **(extra or {}),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
            },
            "responses": {"200": {"description": "done, and audited"}, "400": _ERROR, "401": _REFUSED},
        }
    }


_MODEL_PARAM = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "A router model label (`provider/model`, URL-encoded) or a bare deployment model "
    "name; the action applies in every group whose router has that model.",
    "schema": {"type": "string"},
}


def _model_action(summary: str, body: str = "Reason") -> dict[str, Any]:
    path = _action(summary, body, {"parameters": [_MODEL_PARAM]})
    path["post"]["responses"]["404"] = _ERROR
    return path


_REASON_PROPERTIES = {
    "reason": {"type": "string", "minLength": 1, "description": "Why; required, not blank."},
    "who": {"type": "string", "default": "admin", "description": "Who acts, for the audit trail."},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "model-chaos-harness gateway admin API",
        "version": "1",
        "description": "Manual controls and live state of the resilient gateway. Every endpoint needs "
        "`Authorization: Bearer <token>` (the gateway's admin_token or CHAOS_ADMIN_TOKEN). Every change "
        "is written to the audit trail with who, what, why and when.",
    },
    "paths": {
        "/admin/state": {
            "get": {
                "summary": "Per model: circuit, health, traffic share, weight, p50/p99, error rate, "
                "restoration share, drained; degraded mode; last audit records; run status.",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "the state"}, "401": _REFUSED},
            }
        },
        "/admin/events": {
            "get": {
                "summary": "Server-sent events (`event: state`) carrying the same JSON as /admin/state, "
                "about once a second and promptly after a change.",
                "description": "EventSource cannot send headers, so this one GET also accepts the token "
                "as `?token=`; it is compared in constant time like the header.",
                "security": [{"bearer": []}, {"query": []}],
                "responses": {
                    "200": {"description": "text/event-stream", "content": {"text/event-stream": {}}},
                    "401": _REFUSED,
                    "503": _ERROR,
                },
            }
        },
        "/admin/models/{name}/isolate": _model_action("Force the model's circuit open: no traffic."),
        "/admin/models/{name}/drain": _model_action("Send the model no new requests."),
        "/admin/models/{name}/restore": _model_action("Undo isolate and drain; traffic comes back in steps."),
        "/admin/models/{name}/weight": _model_action("Set the model's base routing weight.", "Weight"),
        "/admin/degraded": _action(
            "Global degraded mode: while on, chat requests get the degraded answer without calling "
            "any model (marked `x-degraded: true`).",
            "Degraded",
        ),
        "/admin/run-status": _action("A harness run reports its phase and active faults.", "RunStatus"),
        "/admin/openapi.json": {
            "get": {
                "summary": "This document.",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "OpenAPI 3"}, "401": _REFUSED},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "query": {"type": "apiKey", "in": "query", "name": "token"},
        },
        "schemas": {
            "Reason": {"type": "object", "required": ["reason"], "properties": _REASON_PROPERTIES},
            "Weight": {
                "type": "object",
                "required": ["weight", "reason"],
                "properties": {"weight": {"type": "number", "minimum": 0}, **_REASON_PROPERTIES},
            },
            "Degraded": {
                "type": "object",
                "required": ["enabled", "reason"],
                "properties": {"enabled": {"type": "boolean"}, **_REASON_PROPERTIES},
            },
            "RunStatus": {
                "type": "object",
                "required": ["scenario", "phase", "elapsed", "duration"],
                "properties": {
                    "scenario": {"type": "string"},
                    "variant": {"type": "string"},
                    "phase": {"type": "string"},
                    "elapsed": {"type": "number", "minimum": 0},
                    "duration": {"type": "number", "minimum": 0},
                    "faults": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["model", "kind", "fault"],
                            "properties": {
                                "model": {"type": "string"},
                                "kind": {"type": "string"},
                                "fault": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                            "param": {"type": "string", "nullable": True},
                            "code": {"type": "string", "nullable": True},
                        },
                    }
                },
            },
        },
        "responses": {
            "Error": {
                "description": "OpenAI-style error naming the problem (and `param` for a bad field)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "Refused": {
                "description": "missing or invalid admin token; nothing changed",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    },
}
"""The document, served as it is."""
