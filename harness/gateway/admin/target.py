"""What the admin routes need of a gateway: a small protocol the gateway implements, so the admin
package depends on no gateway module that depends on it (no cycle)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from harness.gateway.admin.auth import AdminAuth
from harness.gateway.admin.feed import StateFeed
from harness.gateway.admin.state import OperatorState
from resilience_core import Event, ModelRouter


class AdminTarget(Protocol):
    """The routers to act on, the token check, the operator's state, and the live feed."""

    @property
    def routers(self) -> Mapping[str, ModelRouter]: ...

    @property
    def auth(self) -> AdminAuth: ...

    @property
    def operator(self) -> OperatorState: ...

    @property
    def feed(self) -> StateFeed: ...

    def record(self, event: Event) -> None:
        """Audit a gateway-wide event no router owns (degraded mode on or off)."""
        ...

    def state(self) -> dict[str, Any]:
        """What `/admin/state` and the dashboard show."""
        ...
