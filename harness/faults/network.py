"""A network fault: one Toxiproxy toxic on the model's proxy (latency, bandwidth, timeout, ...)."""

from __future__ import annotations

from harness.faults.base import FaultSurface
from harness.scenario import ActiveFault


class NetworkToxic:
    """Adds the toxic when the fault starts and removes it when it stops."""

    family = "network"

    def start(self, surface: FaultSurface, fault: ActiveFault) -> None:
        network = fault.spec.network
        assert network is not None
        surface.toxics.add_toxic(
            fault.model,
            fault.toxic_name,
            network.type,
            dict(network.attributes),
            stream=network.stream,
            toxicity=network.toxicity,
        )

    def stop(self, surface: FaultSurface, fault: ActiveFault) -> None:
        surface.toxics.remove_toxic(fault.model, fault.toxic_name)

    def describe(self, fault: ActiveFault) -> str:
        network = fault.spec.network
        assert network is not None
        parts = [network.stream, *(f"{k} {v}" for k, v in network.attributes.items())]
        if network.toxicity < 1:
            parts.append(f"toxicity {network.toxicity:g}")
        return f"{network.type} toxic on {fault.model} ({', '.join(parts)})"
