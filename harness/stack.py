"""The processes of one run on 127.0.0.1: simulated endpoints, Toxiproxy with one proxy per
model, and a gateway pointed at the proxies. Started in that order, stopped in reverse, always."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from harness.faults import EndpointFault, LatencyModel
from harness.processes import (
    LOOPBACK,
    Child,
    EnvironmentProblem,
    free_ports,
    python_module,
    read_ready_file,
    wait_until,
)
from harness.toxiproxy import ProxySpec, Toxics, ToxiproxyServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GROUP = "chat"
"""The public model name clients ask the gateway for; it spans every simulated model."""


@dataclass
class Stack:
    """Addresses and handles of a running stack."""

    models: list[str]
    endpoint_urls: dict[str, str]
    proxy_urls: dict[str, str]
    toxiproxy: ToxiproxyServer
    toxics: Toxics
    children: list[Child] = field(default_factory=list)
    gateway_url: str | None = None
    gateway_child: Child | None = None
    owned: bool = True
    """False when attached to a stack another process runs: its proxies and processes stay."""

    def set_endpoint_fault(self, model: str, fault: EndpointFault) -> None:
        response = requests.post(f"{self.endpoint_urls[model]}/_control/fault", json=asdict(fault), timeout=5)
        response.raise_for_status()

    def clear_endpoint_fault(self, model: str) -> None:
        requests.delete(f"{self.endpoint_urls[model]}/_control/fault", timeout=5).raise_for_status()

    def reset_endpoint_counts(self) -> None:
        for url in self.endpoint_urls.values():
            requests.post(f"{url}/_control/counts/reset", timeout=5).raise_for_status()

    def endpoint_counts(self) -> dict[str, Any]:
        return {
            m: requests.get(f"{u}/_control/counts", timeout=5).json() for m, u in self.endpoint_urls.items()
        }

    def start_gateway(
        self, config: dict[str, Any], folder: Path, name: str = "gateway", launcher: Sequence[str] = ()
    ) -> str:
        """Start a gateway with `config` (a dict of GatewayConfig) and return its base URL.
        `launcher` runs it under another program (a profiler), which may start slowly."""
        self.stop_gateway()
        config_path = folder / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        ready = folder / f"{name}.ready.json"
        ready.unlink(missing_ok=True)
        child = Child(
            name,
            [
                *launcher,
                *python_module("harness.gateway", "--config", str(config_path), "--ready-file", str(ready)),
            ],
            folder / f"{name}.log",
        )
        self.children.append(child)
        self.gateway_child = child
        patience = 120 if launcher else 20
        announced = wait_until(
            lambda: read_ready_file(ready), timeout=patience, child=child, what="listening"
        )
        self.gateway_url = str(announced["url"])
        return self.gateway_url

    def stop_gateway(self) -> None:
        if self.gateway_child is not None:
            self.gateway_child.stop()
            self.children.remove(self.gateway_child)
            self.gateway_child = None
            self.gateway_url = None

    def view(self) -> Stack:
        """The same processes and proxies, owning none of them: a second gateway can run beside
        this stack's own, and stopping the view stops only that gateway."""
        return Stack(
            self.models, self.endpoint_urls, self.proxy_urls, self.toxiproxy, self.toxics, owned=False
        )

    def describe(self) -> dict[str, Any]:
        """What another run needs to attach to this stack (`chaos-harness run --stack`)."""
        return {
            "models": self.models,
            "endpoint_urls": self.endpoint_urls,
            "proxy_urls": self.proxy_urls,
            "toxiproxy_url": self.toxiproxy.url,
        }

    @classmethod
    def attach(cls, path: Path) -> Stack:
        """A stack someone else started (`chaos-harness up`): we add faults, never stop its processes."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        toxiproxy = ToxiproxyServer(data["toxiproxy_url"], None)
        wait_until(toxiproxy.version, timeout=5, what=f"reachable at {toxiproxy.url}")
        return cls(
            models=list(data["models"]),
            endpoint_urls=dict(data["endpoint_urls"]),
            proxy_urls=dict(data["proxy_urls"]),
            toxiproxy=toxiproxy,
            toxics=Toxics(toxiproxy.url),
            owned=False,
        )

    def stop(self) -> None:
        """Remove every toxic, then stop every process we started, newest first."""
        if not self.owned:
            self.stop_gateway()
            with contextlib.suppress(Exception):
                self.toxics.reset()
            return
        try:
            self.toxics.reset()
            if self.toxiproxy.child is None:  # a shared server: leave no proxy of ours behind
                self.toxics.delete_proxies(list(self.models))
        except Exception:
            pass
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        self.toxiproxy.stop()


def gateway_config(
    stack: Stack,
    mode: str,
    policies: dict[str, Any] | None = None,
    audit_path: Path | None = None,
    plan: str = "sequential",
    hedge_delay: float = 0.5,
) -> dict[str, Any]:
    """A gateway config whose group `chat` spans every model, each reached through its proxy."""
    providers = [{"name": m, "base_url": f"{stack.proxy_urls[m]}/v1", "models": [m]} for m in stack.models]
    deployments = [{"provider": m, "model": m, "priority": i} for i, m in enumerate(stack.models)]
    config: dict[str, Any] = {
        "mode": mode,
        "host": LOOPBACK,
        "port": 0,
        "providers": providers,
        "groups": {GROUP: {"deployments": deployments, "plan": plan, "hedge_delay": hedge_delay}},
        "policies": policies or {},
    }
    if audit_path is not None:
        config["audit_path"] = str(audit_path)
    return config


def _populate(toxics: Toxics, ports: dict[str, int], tries: int = 3) -> list[ProxySpec]:
    """One proxy per model on fresh ports; another process may grab a chosen port, so retry."""
    for attempt in range(tries):
        listen = free_ports(len(ports))
        pairs = zip(ports.items(), listen, strict=True)
        proxies = [ProxySpec(m, f"{LOOPBACK}:{lp}", f"{LOOPBACK}:{p}") for (m, p), lp in pairs]
        try:
            toxics.populate(proxies)
            return proxies
        except EnvironmentProblem as exc:
            if "address already in use" not in str(exc) or attempt == tries - 1:
                raise
            toxics.delete_proxies([p.name for p in proxies])
    raise AssertionError("unreachable")


def start_stack(models: int, folder: Path, *, latency: LatencyModel | None = None, seed: int = 1) -> Stack:
    """Start endpoints and Toxiproxy with one proxy per model; the caller must `stop()` it."""
    folder.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    toxiproxy = None
    try:
        ready = folder / "endpoints.ready.json"
        ready.unlink(missing_ok=True)
        latency_json = json.dumps(asdict(latency or LatencyModel()))
        endpoints = Child(
            "endpoints",
            python_module(
                "harness.endpoints",
                "--models",
                str(models),
                "--seed",
                str(seed),
                "--latency",
                latency_json,
                "--ready-file",
                str(ready),
            ),
            folder / "endpoints.log",
        )
        children.append(endpoints)
        announced = wait_until(lambda: read_ready_file(ready), timeout=30, child=endpoints, what="listening")
        ports: dict[str, int] = announced["ports"]
        toxiproxy = ToxiproxyServer.start(PROJECT_ROOT, folder)
        toxics = Toxics(toxiproxy.url)
        proxies = _populate(toxics, ports)
        return Stack(
            models=list(ports),
            endpoint_urls={m: f"http://{LOOPBACK}:{p}" for m, p in ports.items()},
            proxy_urls={p.name: f"http://{p.listen}" for p in proxies},
            toxiproxy=toxiproxy,
            toxics=toxics,
            children=children,
        )
    except BaseException:
        for child in reversed(children):
            child.stop()
        if toxiproxy is not None:
            toxiproxy.stop()
        raise
