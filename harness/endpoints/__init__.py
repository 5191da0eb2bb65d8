"""The simulated OpenAI-compatible models: app, control API and its client, and the values they
share (latency model, app-level faults). Nothing here imports the rest of the harness."""

from harness.endpoints.model import EndpointFault, LatencyModel

__all__ = ["EndpointFault", "LatencyModel"]
