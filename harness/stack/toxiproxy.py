"""The one adapter between the harness and a real Toxiproxy server.

Per-proxy operations (toxics, enable/disable) go through `toxiproxy-python`. Where that 2019
client falls short we call Toxiproxy's REST API directly: bulk `POST /populate` (the client
creates proxies one request at a time), `POST /reset` and listing toxics (the client does not
raise on unexpected statuses), and every call here has a timeout (the client sets none).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from toxiproxy import Toxiproxy as _Client
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.stack.processes import LOOPBACK, Child, EnvironmentProblem, free_port, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: `make toxiproxy` puts the server in `.bin/` here."""

TIMEOUT = 5.0
PINNED_VERSION = "v2.12.0"
INSTALL_HINT = (
    "install it with `make toxiproxy` (go install github.com/Shopify/toxiproxy/v2/cmd/server@"
    f"{PINNED_VERSION}), set TOXIPROXY_SERVER to a binary, or TOXIPROXY_URL to a running server"
)


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """One proxy: clients connect to `listen`, Toxiproxy forwards to `upstream`."""

    name: str
    listen: str
    upstream: str


def find_server_binary(project_root: Path) -> Path | None:
    """TOXIPROXY_SERVER, then `.bin/toxiproxy-server`, then `toxiproxy-server` on PATH."""
    candidates = [
        os.environ.get("TOXIPROXY_SERVER"),
        str(project_root / ".bin" / "toxiproxy-server"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    found = shutil.which("toxiproxy-server")
    return Path(found) if found else None


class ToxiproxyServer:
    """A Toxiproxy server for one run: the one at TOXIPROXY_URL, or one we start and stop."""

    def __init__(self, url: str, child: Child | None) -> None:
        self.url = url.rstrip("/")
        self.child = child

    @classmethod
    def start(cls, project_root: Path, log_dir: Path) -> ToxiproxyServer:
        existing = os.environ.get("TOXIPROXY_URL")
        if existing:
            server = cls(existing, None)
            wait_until(server.version, timeout=5, what=f"reachable at {existing}")
            return server
        named = os.environ.get("TOXIPROXY_SERVER")
        if named and not (Path(named).is_file() and os.access(named, os.X_OK)):
            raise EnvironmentProblem(f"TOXIPROXY_SERVER={named} is not an executable file; {INSTALL_HINT}")
        binary = find_server_binary(project_root)
        if binary is None:
            raise EnvironmentProblem(f"toxiproxy-server not found; {INSTALL_HINT}")
        port = free_port()
        child = Child(
            "toxiproxy-server",
            [str(binary), "-host", LOOPBACK, "-port", str(port), "-proxy-metrics"],
            log_dir / "toxiproxy.log",
        )
        server = cls(f"http://{LOOPBACK}:{port}", child)
        wait_until(server.version, timeout=10, child=child, what="answering")
        return server

    def received_bytes(self) -> dict[str, float]:
        """Per proxy, the bytes clients have sent into it so far (Toxiproxy's own counter, with
        `-proxy-metrics`; a toxic that holds a request still counts it). Empty when the server
        does not expose them."""
        response = requests.get(f"{self.url}/metrics", timeout=TIMEOUT)
        if response.status_code != 200:
            return {}
        found: dict[str, float] = {}
        for line in response.text.splitlines():
            if line.startswith("toxiproxy_proxy_received_bytes_total{") and 'direction="upstream"' in line:
                labels, value = line.rsplit(" ", 1)
                proxy = labels.split('proxy="', 1)[1].split('"', 1)[0]
                found[proxy] = found.get(proxy, 0.0) + float(value)
        return found

    def version(self) -> str:
        response = requests.get(f"{self.url}/version", timeout=TIMEOUT)
        response.raise_for_status()
        return response.text.strip()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


@contextmanager
def _client_errors(action: str) -> Iterator[None]:
    """The client raises its own exception types (with tracebacks attached); make them one line."""
    try:
        yield
    except (InvalidToxic, NotFound, ProxyExists, requests.RequestException) as exc:
        detail = exc.args[0] if exc.args else type(exc).__name__
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace").strip()
        raise EnvironmentProblem(f"toxiproxy: {action}: {detail}") from None


class Toxics:
    """Create proxies, add and remove toxics, take proxies down and up, reset everything."""

    def __init__(self, server_url: str) -> None:
        self.url = server_url.rstrip("/")
        parsed = urlparse(self.url)
        self._address = (parsed.hostname, parsed.port)
        self._client = _Client()

    def _proxy(self, name: str) -> Any:
        """The client's proxy object, asked of *this* server: the client keeps one address for
        the whole process, so it is pointed here before every call (two stacks in one process,
        as a test session has, would otherwise talk to whichever was made last)."""
        self._client.update_api_consumer(*self._address)
        return self._client.get_proxy(name)

    def _rest(self, method: str, path: str, json: Any = None) -> Any:
        response = requests.request(method, f"{self.url}{path}", json=json, timeout=TIMEOUT)
        if response.status_code >= 400:
            raise EnvironmentProblem(
                f"toxiproxy {method} {path}: {response.status_code} {response.text.strip()[:200]}"
            )
        return response.json() if response.content else None

    def populate(self, proxies: list[ProxySpec]) -> None:
        """Create (or replace) all proxies in one request."""
        body = [
            {"name": p.name, "listen": p.listen, "upstream": p.upstream, "enabled": True} for p in proxies
        ]
        self._rest("POST", "/populate", body)

    def add_toxic(
        self,
        proxy: str,
        name: str,
        toxic_type: str,
        attributes: dict[str, Any],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> None:
        with _client_errors(f"adding {toxic_type} toxic to {proxy}"):
            target = self._proxy(proxy)
            target.add_toxic(
                name=name, type=toxic_type, stream=stream, toxicity=toxicity, attributes=attributes
            )

    def remove_toxic(self, proxy: str, name: str) -> None:
        with _client_errors(f"removing toxic {name} from {proxy}"):
            self._proxy(proxy).destroy_toxic(name)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        with _client_errors(f"{'enabling' if enabled else 'disabling'} {proxy}"):
            target = self._proxy(proxy)
            if enabled:
                target.enable()
            else:
                target.disable()

    def active(self) -> dict[str, Any]:
        """Every proxy's enabled flag and toxic names, straight from the server."""
        proxies = self._rest("GET", "/proxies") or {}
        return {
            name: {"enabled": p["enabled"], "toxics": [t["name"] for t in p.get("toxics", [])]}
            for name, p in proxies.items()
        }

    def reset(self) -> None:
        """Remove every toxic and re-enable every proxy."""
        self._rest("POST", "/reset")

    def delete_proxies(self, names: list[str]) -> None:
        for name in names:
            requests.delete(f"{self.url}/proxies/{name}", timeout=TIMEOUT)
