"""A client of one simulated endpoint's control API: set or clear its fault, read its counts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import requests

from harness.endpoints.app import CONTROL_PREFIX
from harness.endpoints.model import EndpointFault

TIMEOUT = 5.0


class EndpointControl:
    """`POST/DELETE /_control/fault`, `GET /_control/counts`, `POST /_control/counts/reset`."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + CONTROL_PREFIX

    def set_fault(self, fault: EndpointFault) -> None:
        requests.post(f"{self.url}/fault", json=asdict(fault), timeout=TIMEOUT).raise_for_status()

    def clear_fault(self) -> None:
        requests.delete(f"{self.url}/fault", timeout=TIMEOUT).raise_for_status()

    def reset_counts(self, t0: float | None = None) -> None:
        """Counting afresh from now, or from the epoch time `t0` (a run's start, still ahead)."""
        body = {"t0": t0} if t0 is not None else {}
        requests.post(f"{self.url}/counts/reset", json=body, timeout=TIMEOUT).raise_for_status()

    def counts(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/counts", timeout=TIMEOUT)
        response.raise_for_status()
        return dict(response.json())

    def answers(self) -> list[dict[str, Any]]:
        """Every answer the endpoint produced since the last reset: id, words, sent, complete."""
        response = requests.get(f"{self.url}/answers", timeout=TIMEOUT)
        response.raise_for_status()
        return list(response.json()["answers"])

    def requests_log(self) -> list[dict[str, Any]]:
        """Every request the endpoint received since the last reset, with how it ended."""
        response = requests.get(f"{self.url}/requests", timeout=TIMEOUT)
        response.raise_for_status()
        return list(response.json()["requests"])
