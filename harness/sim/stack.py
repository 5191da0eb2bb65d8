"""A simulated stack: the endpoints' behaviour and the proxies' toxics in one process, with
what faults act on (`FaultSurface`) and what a run reads back, as the real stack offers them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.endpoints.behaviour import EndpointState
from harness.endpoints.model import EndpointFault, LatencyModel
from harness.sim.http import SimSession
from harness.sim.network import SimNetwork

TOKEN_TICK = 0.005
"""Token pauses are slept in steps of at least 5 ms (a real endpoint: 1 ms); a stall, a slow
token rate or a first token are timed exactly."""


class SimStack:
    """Models `model-0..n-1`, each an endpoint behind a proxy at a made-up URL nothing listens on."""

    def __init__(
        self, models: list[str], latency: LatencyModel, seed: int, clock: Callable[[], float]
    ) -> None:
        self.models = models
        # The same seeds as the real endpoints' (`endpoints.app.serve`): the same answers.
        self.endpoints = {
            model: EndpointState(model, latency, seed * 1000 + i, clock=clock, token_tick=TOKEN_TICK)
            for i, model in enumerate(models)
        }
        self.network = SimNetwork(models, seed)
        self.proxy_urls = {model: f"http://{model}.sim" for model in models}

    @property
    def toxics(self) -> SimNetwork:
        return self.network

    def session(self) -> SimSession:
        return SimSession(self.network, self.endpoints, self.proxy_urls)

    def set_endpoint_fault(self, model: str, fault: EndpointFault) -> None:
        self.endpoints[model].set_fault(fault)

    def clear_endpoint_fault(self, model: str) -> None:
        self.endpoints[model].set_fault(EndpointFault())

    def reset_endpoint_counts(self, t0: float | None = None) -> None:
        """Virtual time: called at t0 itself, nothing is sent before it returns."""
        del t0
        for state in self.endpoints.values():
            state.reset_counts()

    def endpoint_counts(self) -> dict[str, Any]:
        return {model: state.counts() for model, state in self.endpoints.items()}

    def endpoint_answers(self) -> list[dict[str, Any]]:
        return [
            {"model": model, **answer} for model, state in self.endpoints.items() for answer in state.answers
        ]
