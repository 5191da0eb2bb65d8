"""A model that is down: its proxy disabled, so connections are refused."""

from __future__ import annotations

from harness.faults.base import FaultSurface
from harness.scenario import ActiveFault


class ProxyDown:
    """Disables the model's proxy when the fault starts and enables it when it stops."""

    family = "down"

    def start(self, surface: FaultSurface, fault: ActiveFault) -> None:
        surface.toxics.set_enabled(fault.model, False)

    def stop(self, surface: FaultSurface, fault: ActiveFault) -> None:
        surface.toxics.set_enabled(fault.model, True)

    def describe(self, fault: ActiveFault) -> str:
        return f"{fault.model} down (connections refused)"
