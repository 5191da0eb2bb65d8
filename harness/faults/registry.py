"""Every fault kind, by the scenario field that selects it."""

from __future__ import annotations

from harness.faults.base import FaultKind
from harness.faults.down import ProxyDown
from harness.faults.endpoint import EndpointMisbehaviour
from harness.faults.network import NetworkToxic
from harness.scenario import ActiveFault

REGISTRY: dict[str, FaultKind] = {
    kind.family: kind for kind in (NetworkToxic(), ProxyDown(), EndpointMisbehaviour())
}


def kind_of(fault: ActiveFault) -> FaultKind:
    """The kind that starts and stops `fault`."""
    return REGISTRY[fault.spec.family]
