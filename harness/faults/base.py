"""The one interface every kind of fault implements, and what faults act on.

Toxiproxy's `Toxic` interface and its `Register` are the model: a fault kind knows how to start
and stop itself on a running stack and how to describe itself; the runner only looks kinds up
in the registry, so a new kind is a new module, not another branch in the runner.
"""

from __future__ import annotations

from typing import Any, Protocol

from harness.endpoints.model import EndpointFault
from harness.scenario import ActiveFault


class Toxiproxy(Protocol):
    """The part of the Toxiproxy adapter faults use."""

    def add_toxic(
        self,
        proxy: str,
        name: str,
        toxic_type: str,
        attributes: dict[str, Any],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> None: ...

    def remove_toxic(self, proxy: str, name: str) -> None: ...

    def set_enabled(self, proxy: str, enabled: bool) -> None: ...


class FaultSurface(Protocol):
    """What faults act on: one proxy per model, and each model's simulated endpoint."""

    @property
    def toxics(self) -> Toxiproxy: ...

    def set_endpoint_fault(self, model: str, fault: EndpointFault) -> None: ...

    def clear_endpoint_fault(self, model: str) -> None: ...


class FaultKind(Protocol):
    """One kind of fault: started and stopped on one model at a time."""

    family: str
    """The scenario field that selects it (`Fault.family`)."""

    def start(self, surface: FaultSurface, fault: ActiveFault) -> None: ...

    def stop(self, surface: FaultSurface, fault: ActiveFault) -> None: ...

    def describe(self, fault: ActiveFault) -> str:
        """One line for people: what this fault does to that model."""
        ...
