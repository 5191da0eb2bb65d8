"""An app-level fault TCP cannot express (HTTP errors, malformed or cut streams, slow tokens),
played by the model's simulated endpoint through its control API."""

from __future__ import annotations

from harness.endpoints.model import EndpointFault
from harness.faults.base import FaultSurface
from harness.scenario import ActiveFault


class EndpointMisbehaviour:
    """Sets the endpoint's fault when it starts and clears it when it stops."""

    family = "endpoint"

    def start(self, surface: FaultSurface, fault: ActiveFault) -> None:
        assert fault.spec.endpoint is not None
        surface.set_endpoint_fault(fault.model, EndpointFault(**fault.spec.endpoint))

    def stop(self, surface: FaultSurface, fault: ActiveFault) -> None:
        surface.clear_endpoint_fault(fault.model)

    def describe(self, fault: ActiveFault) -> str:
        settings = ", ".join(f"{k} {v}" for k, v in (fault.spec.endpoint or {}).items())
        return f"{fault.model} endpoint: {settings}"
