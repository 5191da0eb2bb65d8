"""Manual controls: a separate handle whose every command is an audited event."""

from __future__ import annotations

from typing import Any

from .events import AdminAction, WeightChanged
from .router import ModelHandle, ModelRouter


class UnknownModelError(KeyError):
    """An admin command named a model the router does not have."""


class AdminControls:
    """Isolate, drain, restore and reweight models by hand, with who and why on record.

    Usage::

        admin = AdminControls(router)
        admin.isolate("gpt-a", who="alice", why="provider incident #123")
        admin.restore("gpt-a", who="alice", why="provider fixed")
    """

    def __init__(self, router: ModelRouter) -> None:
        self.router = router

    def _model(self, name: str) -> ModelHandle:
        try:
            return self.router.models[name]
        except KeyError:
            raise UnknownModelError(name) from None

    def _record(self, action: str, model: str, who: str, why: str, **details: Any) -> None:
        if not why.strip():
            raise ValueError("an admin action needs a reason")
        now = self.router.clock.now()
        self.router.events.emit(AdminAction(now, model, action, who, why, details))

    def isolate(self, model: str, *, who: str, why: str) -> None:
        """Force the model's circuit open until restored: no traffic at all."""
        handle = self._model(model)
        self._record("isolate", model, who, why)
        handle.breaker.isolate(self.router.clock.now(), f"isolated by {who}: {why}")

    def drain(self, model: str, *, who: str, why: str) -> None:
        """Stop sending new requests; requests in flight finish."""
        handle = self._model(model)
        self._record("drain", model, who, why)
        handle.drained = True

    def restore(self, model: str, *, who: str, why: str) -> None:
        """Undo isolate, drain and any hold (a Retry-After, slowness): the operator says it is
        fine now; the model climbs back through progressive restoration."""
        handle = self._model(model)
        self._record("restore", model, who, why)
        handle.drained = False
        self.router.release_hold(model)
        handle.breaker.restore(self.router.clock.now(), f"restored by {who}: {why}")

    def set_weight(self, model: str, weight: float, *, who: str, why: str) -> None:
        """Change the model's base routing weight (0 takes it out of rotation)."""
        if weight < 0:
            raise ValueError("weight must be >= 0")
        handle = self._model(model)
        self._record("set_weight", model, who, why, weight=weight)
        before = handle.base_weight
        handle.base_weight = weight
        now = self.router.clock.now()
        self.router.events.emit(WeightChanged(now, model, before, weight, f"set by {who}: {why}"))
