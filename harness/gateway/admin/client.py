"""The one client of a gateway's admin API: the `admin` command, a run's operator steps and its
observers (state snapshots, the dashboard's run status) all go through it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

TIMEOUT = 10.0


class AdminError(RuntimeError):
    """The gateway could not be reached, refused (401, 4xx), or did not answer with JSON."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AdminClient:
    """Usage::

    client = AdminClient("http://127.0.0.1:4000", token)
    client.model_action("model-2", "isolate", reason="provider incident", who="alice")
    """

    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = requests.request(
                method, f"{self.url}{path}", json=body, headers=self.headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise AdminError(f"cannot reach the gateway at {self.url}: {type(exc).__name__}") from None
        if response.status_code == 401:
            raise AdminError("refused (401): missing or invalid admin token; nothing changed", 401)
        if not response.ok:
            raise AdminError(
                f"refused ({response.status_code}): {_message(response)}; nothing changed",
                response.status_code,
            )
        try:
            return dict(response.json())
        except ValueError:
            raise AdminError(
                f"the gateway at {self.url} did not answer with JSON (is it our gateway?)"
            ) from None

    def state(self) -> dict[str, Any]:
        return self.call("GET", "/admin/state")

    def model_action(
        self, model: str, action: str, *, reason: str, who: str, weight: float | None = None
    ) -> dict[str, Any]:
        """isolate, drain, restore or weight (with `weight`) on `model`, in every group that has it."""
        body: dict[str, Any] = {"reason": reason, "who": who}
        if weight is not None:
            body["weight"] = weight
        return self.call("POST", f"/admin/models/{quote(model, safe='')}/{action}", body)

    def degraded(self, enabled: bool, *, reason: str, who: str) -> dict[str, Any]:
        return self.call("POST", "/admin/degraded", {"enabled": enabled, "reason": reason, "who": who})

    def run_status(self, status: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/admin/run-status", status)


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason or "error"
