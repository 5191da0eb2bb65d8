"""What an operator's action does to the gateway, whoever sends it: the admin routes (over HTTP,
token checked) and the simulation's timeline (in process) both call these."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from harness.gateway.admin.state import DegradedMode
from harness.gateway.admin.target import AdminTarget
from resilience_core import AdminAction, AdminControls

log = logging.getLogger("harness.gateway.admin")

ACTIONS = ("isolate", "drain", "restore", "weight")


class UnknownTarget(LookupError):
    """No router has a model of that name."""


def targets(gateway: AdminTarget, name: str) -> list[tuple[str, str]]:
    """(group, label) of every router model called `name`, by label or bare model name."""
    return [
        (group, label)
        for group, router in gateway.routers.items()
        for label in router.models
        if label == name or label.split("/", 1)[-1] == name
    ]


def model_action(
    gateway: AdminTarget, name: str, action: str, who: str, why: str, weight: float | None = None
) -> list[tuple[str, str]]:
    """isolate, drain, restore or weight `name` in every group that has it; where it applied."""
    found = targets(gateway, name)
    if not found:
        where = " (passthrough mode has no model controls)" if not gateway.routers else ""
        raise UnknownTarget(f"no router has a model {name!r}{where}")
    for group, label in found:
        controls = AdminControls(gateway.routers[group])
        if action == "weight":
            assert weight is not None
            controls.set_weight(label, weight, who=who, why=why)
        else:
            getattr(controls, action)(label, who=who, why=why)
    log.warning("admin %s %s (%d routers) by %s: %s", action, name, len(found), who, why)
    gateway.feed.poke()
    return found


def set_degraded(
    gateway: AdminTarget, enabled: bool, who: str, why: str, now: Callable[[], float] = time.monotonic
) -> DegradedMode:
    """The operator's degraded-mode switch: every request gets the degraded answer while on."""
    gateway.operator.degraded = DegradedMode(enabled, time.time() if enabled else None, who, why)
    action = "degraded_on" if enabled else "degraded_off"
    gateway.record(AdminAction(now(), None, action, who, why, {"enabled": enabled}))
    log.warning("admin %s by %s: %s", action, who, why)
    return gateway.operator.degraded


class LocalAdmin:
    """The admin client's calls, in process: what the simulation's timeline sends its gateway."""

    def __init__(self, gateway: AdminTarget, now: Callable[[], float]) -> None:
        self.gateway = gateway
        self.now = now

    def model_action(
        self, model: str, action: str, *, reason: str, who: str, weight: float | None = None
    ) -> dict[str, Any]:
        applied = model_action(self.gateway, model, action, who, reason, weight)
        return {"ok": True, "applied": [{"group": g, "model": m} for g, m in applied]}

    def degraded(self, enabled: bool, *, reason: str, who: str) -> dict[str, Any]:
        return {"ok": True, "degraded": set_degraded(self.gateway, enabled, who, reason, self.now).to_dict()}
